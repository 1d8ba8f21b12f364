"""scripts/benchlib: the pure parts of the benchmark (targets, metric deltas, CPU split, stats, report)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.benchlib.ceilings import duration_stats
from scripts.benchlib.load import LevelResult, Sample
from scripts.benchlib.machine import parse_cpuinfo
from scripts.benchlib.procfs import CLK_TCK
from scripts.benchlib.repeated import CACHE_ENTRIES, compare
from scripts.benchlib.report import (
    level_table,
    markdown,
    noisy_phases,
    phases,
    repeated_table,
    runtime_table,
    soak_table,
    storm_table,
    target_lines,
)
from scripts.benchlib.server_stats import CpuSplit, metric_totals, stage_wall_ms
from scripts.benchlib.soak import memory_growth
from scripts.benchlib.storm import reference_level, rejection_cpu_ms
from scripts.benchlib.targets import check_targets, target

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"

EXPOSITION = """\
# TYPE visionserve_images counter
visionserve_images_total {images}
# TYPE visionserve_preprocess_seconds histogram
visionserve_preprocess_seconds_bucket{{le="+Inf"}} {images}
visionserve_preprocess_seconds_count {images}
visionserve_preprocess_seconds_sum {preprocess}
# TYPE visionserve_queue_wait_seconds histogram
visionserve_queue_wait_seconds_count {images}
visionserve_queue_wait_seconds_sum {queue}
# TYPE visionserve_inference_seconds histogram
visionserve_inference_seconds_count {batches}
visionserve_inference_seconds_sum {inference}
# TYPE visionserve_batch_size histogram
visionserve_batch_size_count {batches}
visionserve_batch_size_sum {images}
# TYPE visionserve_request_duration_seconds histogram
visionserve_request_duration_seconds_count{{route="/v1/predict"}} {images}
visionserve_request_duration_seconds_sum{{route="/v1/predict"}} {requests}
visionserve_request_duration_seconds_count{{route="/v1/models"}} 1000
visionserve_request_duration_seconds_sum{{route="/v1/models"}} 1000
# TYPE visionserve_rejections counter
visionserve_rejections_total{{reason="queue_full"}} {rejections}
visionserve_rejections_total{{reason="not_ready"}} 1
"""


def _exposition(
    *,
    images: int,
    batches: int,
    preprocess: float,
    queue: float,
    inference: float,
    requests: float,
    rejections: int = 0,
) -> str:
    """An exposition as a server would answer it; the seconds are sums over every image (or batch, or request)."""
    return EXPOSITION.format_map(locals())


EARLIER = _exposition(images=10, batches=2, preprocess=0.03, queue=0.1, inference=0.4, requests=1.0)


def test_metric_totals_keep_the_predict_route_and_drop_buckets() -> None:
    totals = metric_totals(EARLIER)
    assert totals["visionserve_request_duration_seconds_sum"] == 1.0  # /v1/models left out
    assert not any(name.endswith("_bucket") for name in totals)


def test_stage_wall_ms_is_per_image_between_two_scrapes() -> None:
    before = metric_totals(EARLIER)
    after = metric_totals(
        _exposition(images=26, batches=4, preprocess=0.078, queue=0.42, inference=1.2, requests=3.4, rejections=7)
    )
    stages = stage_wall_ms(before, after)
    assert stages["images"] == 16
    assert stages["rejections"] == 7  # every reason counts; the constant one cancels out
    assert stages["mean_batch"] == 8.0
    assert stages["preprocess_ms"] == 3.0
    assert stages["queue_ms"] == 20.0
    assert stages["inference_ms_per_batch"] == 400.0
    assert stages["inference_ms_per_image"] == 50.0
    assert stages["request_ms"] == 150.0


def test_stage_wall_ms_without_traffic_is_none_not_a_division_by_zero() -> None:
    same = metric_totals(EARLIER)
    assert stage_wall_ms(same, same)["preprocess_ms"] is None


def test_cpu_split_gives_inference_as_the_workers_other_threads() -> None:
    earlier = CpuSplit(master=1, event_loop=10, decode=0, workers=100)
    later = CpuSplit(master=1, event_loop=10 + CLK_TCK, decode=2 * CLK_TCK, workers=100 + 10 * CLK_TCK)
    ms = later.minus(earlier).ms_per_image(10)
    assert ms == {"total": 1000.0, "decode": 200.0, "inference": 700.0, "event_loop": 100.0, "master": 0.0}
    assert later.minus(earlier).ms_per_image(0)["total"] is None
    assert later.minus(earlier).ms() == {k: v * 10 for k, v in ms.items()}  # the window's CPU, not per image


def test_target_results() -> None:
    assert target("t", 8, 10, op=">=", limit=0.7, unit="img/s")["result"] == "PASS"
    assert target("t", 6, 10, op=">=", limit=0.7, unit="img/s")["result"] == "MISS"
    assert target("t", 1000, 1000, op="<", limit=1.0, unit="ms")["result"] == "MISS"
    assert target("t", None, 10, op=">=", limit=0.7, unit="img/s")["result"] == "SKIP"
    assert target("t", 1, 0, op=">=", limit=0.7, unit="img/s")["result"] == "SKIP"


def test_a_target_is_judged_on_the_ratio_it_prints() -> None:
    found = target("t", 16, 10.667, op=">=", limit=1.5, unit="img/s")  # 1.49995...
    assert (found["ratio"], found["result"]) == (1.5, "PASS")


def _level(concurrency: int, img_s: float, p50: float = 10.0, p99: float = 100.0) -> dict[str, Any]:
    return {"concurrency": concurrency, "throughput_img_s": img_s, "p50_ms": p50, "p99_ms": p99}


@pytest.mark.parametrize(("amx", "expected"), [(True, "MISS"), (False, "PASS")])
def test_the_speedup_over_torch_needs_4x_with_amx_and_1_5x_without(amx: bool, expected: str) -> None:
    targets = check_targets(
        levels={"openvino": [_level(1, 50), _level(16, 200), _level(64, 190)], "torch": [_level(16, 100)]},
        ceiling_batch8_img_s=250,
        reference_c1_ms=5,
        amx=amx,
        pss_mb=800,
        ready_warm_s={"openvino": 6, "torch": 4},
    )
    by_name = {t["target"].split(" (")[0]: t["result"] for t in targets}
    assert by_name["c=16 openvino throughput / torch-runtime throughput"] == expected
    others = [t["result"] for t in targets if "torch-runtime" not in t["target"]]
    assert others == ["PASS", "MISS", "PASS", "PASS", "PASS", "PASS", "SKIP", "SKIP", "SKIP"]  # no storm, no soak


def test_targets_of_levels_not_run_are_skipped() -> None:
    targets = check_targets(
        levels={"openvino": [_level(1, 50)]},
        ceiling_batch8_img_s=None,
        reference_c1_ms=5,
        amx=False,
        pss_mb=None,
        ready_warm_s={"openvino": 6},
    )
    assert [t["result"] for t in targets] == ["SKIP", "SKIP", "MISS", "SKIP", "SKIP", "SKIP", "SKIP"] + ["SKIP"] * 3
    assert all(line.split()[0] in {"PASS", "MISS", "SKIP"} for line in target_lines(targets))


def test_level_result_counts_accepted_shed_errors_and_drops_late_answers() -> None:
    level = LevelResult(concurrency=2, duration_s=2.0)
    for sample in (Sample(200, 0.01, 1.0), Sample(200, 0.03, 1.5), Sample(503, 0.001, 1.6), Sample(200, 0.5, 9.0)):
        level.record(sample, stop_at=5.0)
    level.record("ConnectionResetError: reset", stop_at=5.0)
    summary = level.summary()
    assert (summary["ok"], summary["shed"], summary["errors"]) == (2, 1, 1)
    assert summary["throughput_img_s"] == 1.0
    assert summary["p50_ms"] == 20.0
    assert summary["shed_pct"] == 25.0


def test_duration_stats_in_ms() -> None:
    assert duration_stats([0.001, 0.002, 0.003]) | {"p90": None} == {
        "median": 2.0,
        "mean": 2.0,
        "p90": None,
        "max": 3.0,
        "n": 3,
    }


def test_parse_cpuinfo_reads_the_first_processor() -> None:
    text = "processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 amx_tile\n\nprocessor\t: 1\nmodel name\t: Other\n"
    assert parse_cpuinfo(text) == ("Xeon", {"fpu", "avx2", "amx_tile"})


def test_the_tables_have_a_row_per_runtime_and_level() -> None:
    cpu = {"total": 10.0, "decode": 3.0, "inference": 5.0, "event_loop": 2.0, "master": 0.0}
    level = {
        **_level(16, 200.0),
        "p95_ms": 90.0,
        "shed": 0,
        "server_ms": {"mean_batch": 7.5},
        "cpu_ms_per_image": cpu,
        "cpu": {"other_cores": 0.0},
    }
    servers = {
        "openvino": {"levels": [level], "start": {"first": {"ready_s": 9.0}, "warm": {"ready_s": 3.0}}, "pss_mb": 700},
        "torch": {"levels": [level, level], "start": {}, "pss_mb": None},
    }
    in_process = {"openvino": {"precision": "bf16", "threads": 2, "batch1_img_s": 150, "batch8_img_s": 240}}
    runtimes = runtime_table(in_process, servers).splitlines()
    assert len(runtimes) == 4
    assert "| 9.0 / 3.0 | 700 |" in runtimes[2]
    assert runtimes[3].startswith("| torch | - |")
    assert len(level_table(servers).splitlines()) == 2 + 3


def test_noisy_phases_names_those_over_the_limit() -> None:
    assert noisy_phases({"a": {"other_cores": 0.5}, "b": {"other_cores": 0.1}}) == ["a (0.5 cores)"]


def _window(images: float, rejections: float, a: dict[str, float], r: dict[str, float]) -> dict[str, Any]:
    """A measured window whose CPU per group is exactly a x images + r x rejections."""
    return {
        "server_ms": {"images": images, "rejections": rejections},
        "cpu_ms": {group: a[group] * images + r[group] * rejections for group in a},
    }


PER_IMAGE = {"total": 200.0, "decode": 4.0, "inference": 190.0, "event_loop": 6.0, "master": 0.0}
PER_REJECTION = {"total": 0.8, "decode": 0.0, "inference": 0.0, "event_loop": 0.8, "master": 0.0}


@pytest.mark.parametrize("reference_rejections", [0, 30])
def test_rejection_cpu_ms_solves_both_windows_for_the_cost_of_one_rejection(reference_rejections: int) -> None:
    reference = _window(150, reference_rejections, PER_IMAGE, PER_REJECTION)
    storm = _window(120, 4000, PER_IMAGE, PER_REJECTION)
    assert rejection_cpu_ms(reference, storm) == pytest.approx(PER_REJECTION, abs=1e-3)


def test_rejection_cpu_ms_without_rejections_only_in_the_reference_is_the_storm_excess_per_rejection() -> None:
    reference = {"server_ms": {"images": 100, "rejections": 0}, "cpu_ms": {"event_loop": 500.0}}
    storm = {"server_ms": {"images": 80, "rejections": 1000}, "cpu_ms": {"event_loop": 1400.0}}
    assert rejection_cpu_ms(reference, storm) == {"event_loop": 1.0}  # (1400 - 80 x 5) / 1000


def test_rejection_cpu_ms_is_none_when_the_windows_cannot_tell_it_apart() -> None:
    same = _window(100, 10, PER_IMAGE, PER_REJECTION)
    assert set(rejection_cpu_ms(same, same).values()) == {None}  # the storm refused no more per image
    no_images = _window(0, 0, PER_IMAGE, PER_REJECTION)
    assert set(rejection_cpu_ms(no_images, same).values()) == {None}


def test_the_storm_is_priced_against_the_c16_level_only() -> None:
    assert reference_level([_level(1, 5), _level(64, 9)]) is None
    assert reference_level([_level(1, 5), _level(16, 9)]) == _level(16, 9)


def test_memory_growth_judges_the_workers_own_pages_not_pss() -> None:
    before = {"rss_mb": 1000.0, "pss_mb": 700.0, "anonymous_mb": 400.0}
    growth = memory_growth(before, {"rss_mb": 1010.0, "pss_mb": 810.0, "anonymous_mb": 430.0})
    assert growth == {"rss_mb": 10.0, "pss_mb": 110.0, "anonymous_mb": 30.0, "mb": 30.0}
    assert memory_growth(before, {"rss_mb": 990.0, "pss_mb": 690.0, "anonymous_mb": 395.0})["mb"] == -5.0


def _storm(img_s: float, p99: float | None) -> dict[str, Any]:
    return {
        "concurrency": 64,
        "throughput_img_s": img_s,
        "p50_ms": 100.0,
        "p95_ms": 200.0,
        "p99_ms": p99,
        "shed": 5000,
        "rejection_cpu_ms": 0.55,
        "rejection_cpu_ms_by_group": {"total": 0.64, "event_loop": 0.55},
        "cpu": {"other_cores": 0.0},
    }


def _soak(growth_mb: float) -> dict[str, Any]:
    memory = {"rss_mb": 1000.0, "pss_mb": 700.0, "anonymous_mb": 400.0}
    return {
        "requests": 5000,
        "concurrency": 16,
        "duration_s": 600.0,
        "ok": 4900,
        "shed": 100,
        "errors": 0,
        "memory_before": memory,
        "memory_after": memory,
        "growth": {"mb": growth_mb},
    }


@pytest.mark.parametrize(
    ("storm", "soak", "expected"),
    [
        (_storm(170, 1990.0), _soak(49.9), ["PASS", "PASS", "PASS"]),
        (_storm(150, 2000.0), _soak(50.0), ["MISS", "MISS", "MISS"]),  # 150 / 200 < 0.8; limits are exclusive
        (_storm(0, None), _soak(-3.0), ["MISS", "SKIP", "PASS"]),  # nothing accepted: no p99 to judge
    ],
)
def test_storm_and_soak_targets(storm: dict, soak: dict, expected: list[str]) -> None:
    targets = check_targets(
        levels={"openvino": [_level(16, 200)]},
        ceiling_batch8_img_s=None,
        reference_c1_ms=None,
        amx=False,
        pss_mb=None,
        ready_warm_s={},
        storm=storm,
        soak=soak,
    )
    assert [t["result"] for t in targets[-3:]] == expected
    names = [t["target"].split(":")[0] for t in targets[-3:]]
    assert names == ["retry storm (clients retry 503 at once)", "retry storm", "soak"]


def test_the_storm_without_a_c16_level_is_not_judged_on_throughput() -> None:
    targets = check_targets(
        levels={"openvino": [_level(1, 50)]},
        ceiling_batch8_img_s=None,
        reference_c1_ms=None,
        amx=False,
        pss_mb=None,
        ready_warm_s={},
        storm=_storm(170, 500.0),
    )
    assert [t["result"] for t in targets[-3:]] == ["SKIP", "PASS", "SKIP"]


def test_the_report_has_storm_and_soak_tables_only_where_they_ran() -> None:
    level = {
        **_level(16, 200.0),
        "p95_ms": 90.0,
        "shed": 0,
        "server_ms": {"mean_batch": 7.5},
        "cpu_ms_per_image": dict.fromkeys(PER_IMAGE, 1.0),
        "cpu": {"other_cores": 0.0},
    }
    bare = {"openvino": {"levels": [level], "start": {}, "pss_mb": None}}
    full = {
        "openvino": {**bare["openvino"], "storm": _storm(170, 900.0), "soak": _soak(12.5)},
        "torch": bare["openvino"],
    }
    assert "retry 503 at once" not in markdown("cmd", "cpu", {}, bare)
    assert "retry 503 at once" not in markdown("cmd", "cpu", {}, {"openvino": {**bare["openvino"], "storm": None}})
    storm_rows = storm_table(full).splitlines()
    assert len(storm_rows) == 3  # the header, its rule, openvino only
    assert storm_rows[2] == "| openvino | 64 | 170 | 100.0 | 200.0 | 900.0 | 5000 | 0.55 | 0.64 | 0.0 |"
    soak_rows = soak_table(full).splitlines()
    assert len(soak_rows) == 3
    assert soak_rows[2].startswith("| openvino | 5000 | 16 | 600.0 | 4900 | 100 | 0 | 1000.0 -> 1000.0 |")
    assert soak_rows[2].endswith("| 12.5 |")
    report = markdown("cmd", "cpu", {}, full)
    assert storm_table(full) in report and soak_table(full) in report
    assert "openvino retry storm" in phases({}, full)


def _cache_window(img_s: float, p50: float | None, hits: float, misses: float) -> dict[str, Any]:
    cache = {"hits": hits, "misses": misses, "batches": misses, "hit_ratio": hits / (hits + misses) if hits else None}
    return {**_level(16, img_s, p50), "cache": cache, "cpu": {"other_cores": 0.1}}


def test_the_repeated_workload_compares_cache_on_with_off_and_reports_the_hit_p50() -> None:
    repeated = compare(_cache_window(10.0, 600.0, 0, 0), _cache_window(400.0, 6.5, 6000, 0), clients=16, photos=4)
    assert (repeated["speedup"], repeated["hit_p50_ms"], repeated["hit_ratio"]) == (40.0, 6.5, 1.0)
    assert repeated["cache_entries"] == CACHE_ENTRIES and str(CACHE_ENTRIES) in repeated["method"]
    assert (
        compare(_cache_window(0.0, None, 0, 0), _cache_window(5.0, 9.0, 50, 0), clients=1, photos=4)["speedup"] is None
    )
    level = {**_level(16, 10.0), "p95_ms": 1.0, "shed": 0, "server_ms": {"mean_batch": 1.0}, "cpu": {"other_cores": 0}}
    level["cpu_ms_per_image"] = dict.fromkeys(PER_IMAGE, 1.0)
    bare = {"openvino": {"levels": [level], "start": {}, "pss_mb": None}}
    ran = {"openvino": {**bare["openvino"], "repeated": repeated}, "torch": bare["openvino"]}
    rows = repeated_table(ran).splitlines()
    assert len(rows) == 3  # the header, its rule, openvino only
    assert rows[2] == "| openvino | 16 / 4 | 10.0 | 400.0 | 40.0 | 600.0 | 6.5 | 1.0 | 0.1 / 0.1 |"
    assert repeated_table(ran) in markdown("cmd", "cpu", {}, ran)
    assert "repeated images" not in markdown("cmd", "cpu", {}, bare)
    assert {"openvino repeated, cache off", "openvino repeated, cache on"} <= set(phases({}, ran))


@pytest.mark.parametrize(
    "option", ["--soak-requests=100001", "--soak-requests=-1", "--storm-clients=513", "--repeat-clients=513"]
)
def test_the_soak_and_storm_options_are_bounded(option: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), option], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "out of range" in done.stderr
