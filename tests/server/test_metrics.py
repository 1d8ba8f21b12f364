"""/metrics under gunicorn: all workers counted, batches form under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness.local_server import LocalServer
from tests.server.metrics_text import samples, total

pytestmark = pytest.mark.service


def _predict(url: str, body: bytes) -> int:
    with requests.Session() as session:
        return session.post(
            f"{url}/v1/predict", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60
        ).status_code


def test_request_counter_counts_every_request_across_both_workers(server: LocalServer, jpeg_bytes: bytes) -> None:
    before = total(server.url, "visionserve_requests_total", route="/v1/predict")
    sent = 30
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: _predict(server.url, jpeg_bytes), range(sent)))
    bad = requests.post(f"{server.url}/v1/predict", data=b"", headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert statuses == [200] * sent and bad.status_code == 400
    after = total(server.url, "visionserve_requests_total", route="/v1/predict")
    assert after - before == sent + 1
    assert total(server.url, "visionserve_requests_total", route="/v1/predict", status="400") >= 1
    pids = {labels.get("pid") for name, labels, _ in samples(server.url) if name == "visionserve_ready"}
    assert total(server.url, "visionserve_ready") == 2, pids  # both workers report


def test_concurrent_requests_are_batched(server: LocalServer, jpeg_bytes: bytes) -> None:
    def batches_of_one_and_all() -> tuple[float, float]:
        return (
            total(server.url, "visionserve_batch_size_bucket", le="1.0"),
            total(server.url, "visionserve_batch_size_count"),
        )

    ones_before, all_before = batches_of_one_and_all()
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda _: _predict(server.url, jpeg_bytes), range(48)))
    assert statuses == [200] * 48
    ones_after, all_after = batches_of_one_and_all()
    batches = all_after - all_before
    assert 0 < batches < 48  # 48 images took fewer forward passes
    assert all_after - ones_after > all_before - ones_before  # some batch held more than one image
    assert total(server.url, "visionserve_images_total") >= 48


def test_every_stage_and_the_model_are_exported(server: LocalServer) -> None:
    names = {name for name, _, _ in samples(server.url)}
    for expected in (
        "visionserve_preprocess_seconds_count",
        "visionserve_queue_wait_seconds_count",
        "visionserve_inference_seconds_count",
        "visionserve_request_duration_seconds_count",
        "visionserve_requests_in_flight",
        "visionserve_queue_depth",
        "visionserve_rejections_total",
        "visionserve_predictions_total",
    ):
        assert expected in names
    info = [labels for name, labels, value in samples(server.url) if name == "visionserve_model_info" and value]
    assert info and info[0]["weights"] == "random" and info[0]["device"] == "cpu"
    assert info[0]["runtime"] == "torch" and info[0]["precision"] in {"fp32", "bf16"}  # as the fixture asks


def test_raw_paths_and_methods_never_become_labels(server: LocalServer) -> None:
    for path in ("/a1", "/b2", "/c3"):
        requests.get(f"{server.url}{path}", timeout=10)
    for method in ("FOO1", "FOO2", "BAR-X"):
        requests.request(method, f"{server.url}/v1/models", timeout=10)
    found = [labels for name, labels, _ in samples(server.url) if name == "visionserve_requests_total"]
    routes = {labels["route"] for labels in found}
    assert not routes & {"/a1", "/b2", "/c3"}
    assert "unmatched" in routes
    assert {labels["method"] for labels in found} <= {"GET", "POST", "HEAD", "other"}
    assert "other" in {labels["method"] for labels in found}


def test_probes_and_scrapes_are_not_traffic(server: LocalServer) -> None:
    probes = ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready")
    for path in probes:
        requests.get(f"{server.url}{path}", timeout=10)
    routes = {labels["route"] for name, labels, _ in samples(server.url) if name == "visionserve_requests_total"}
    assert not routes & set(probes)
    assert total(server.url, "visionserve_requests_in_flight") == 0  # the scrape itself does not count
    assert total(server.url, "visionserve_workers") == 2 == total(server.url, "visionserve_ready")
