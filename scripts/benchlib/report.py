"""The report: Markdown tables ready for the README, the targets, and the phases other processes disturbed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

NOISY_CORES = 0.25  # a phase is flagged when other processes used more than this many cores


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def runtime_table(in_process: Mapping[str, dict[str, Any]], servers: Mapping[str, dict[str, Any]]) -> str:
    """One row per runtime: its ceilings in process (no HTTP), its time to ready and its memory under load."""
    rows = [
        "| runtime | precision | threads | in-process batch 1 img/s | in-process batch 8 img/s "
        "| decode + preprocess ms/img | batch 1, decode to answer ms | ready s (first / warm start) | PSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runtime in {**in_process, **servers}:
        ceiling, server = in_process.get(runtime, {}), servers.get(runtime, {})
        start = server.get("start", {})
        ready = " / ".join(_cell(start.get(key, {}).get("ready_s")) for key in ("first", "warm"))
        rows.append(
            f"| {runtime} | {_cell(ceiling.get('precision'))} | {_cell(ceiling.get('threads'))} "
            f"| {_cell(ceiling.get('batch1_img_s'))} | {_cell(ceiling.get('batch8_img_s'))} "
            f"| {_cell(ceiling.get('preprocess_ms', {}).get('median'))} "
            f"| {_cell(ceiling.get('batch1_total_ms', {}).get('median'))} | {ready} | {_cell(server.get('pss_mb'))} |"
        )
    return "\n".join(rows)


def level_table(servers: Mapping[str, dict[str, Any]]) -> str:
    """One row per runtime and concurrency: what clients saw, and the server's CPU per image by thread group."""
    rows = [
        "| runtime | concurrency | img/s | p50 ms | p95 ms | p99 ms | shed (503) | mean batch "
        "| CPU ms/img | decode | inference | event loop | other CPU cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runtime, server in servers.items():
        for lv in server["levels"]:
            cpu = lv["cpu_ms_per_image"]
            rows.append(
                f"| {runtime} | {lv['concurrency']} | {lv['throughput_img_s']} | {_cell(lv['p50_ms'])} "
                f"| {_cell(lv['p95_ms'])} | {_cell(lv['p99_ms'])} | {lv['shed']} "
                f"| {_cell(lv['server_ms']['mean_batch'])} | {_cell(cpu['total'])} | {_cell(cpu['decode'])} "
                f"| {_cell(cpu['inference'])} | {_cell(cpu['event_loop'])} | {lv['cpu']['other_cores']} |"
            )
    return "\n".join(rows)


def storm_table(servers: Mapping[str, dict[str, Any]]) -> str:
    """One row per runtime whose retry storm ran: what its clients saw, and what one rejection cost the server."""
    rows = [
        "| runtime | clients (retry 503 at once) | accepted img/s | p50 ms | p95 ms | p99 ms | 503s "
        "| rejection CPU-ms (event loop) | rejection CPU-ms (whole server) | other CPU cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runtime, server in servers.items():
        storm = server.get("storm")
        if storm:
            whole = (storm["rejection_cpu_ms_by_group"] or {}).get("total")
            rows.append(
                f"| {runtime} | {storm['concurrency']} | {storm['throughput_img_s']} | {_cell(storm['p50_ms'])} "
                f"| {_cell(storm['p95_ms'])} | {_cell(storm['p99_ms'])} | {storm['shed']} "
                f"| {_cell(storm['rejection_cpu_ms'])} | {_cell(whole)} | {storm['cpu']['other_cores']} |"
            )
    return "\n".join(rows)


def soak_table(servers: Mapping[str, dict[str, Any]]) -> str:
    """One row per runtime whose soak ran: requests, time, and the workers' memory before and after."""
    rows = [
        "| runtime | requests | concurrency | seconds | accepted | 503s | errors "
        "| worker RSS MB before -> after | anonymous MB before -> after | PSS MB before -> after "
        "| growth MB (RSS or anonymous) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runtime, server in servers.items():
        soak = server.get("soak")
        if soak:
            before, after = soak["memory_before"], soak["memory_after"]
            rows.append(
                f"| {runtime} | {soak['requests']} | {soak['concurrency']} | {soak['duration_s']} | {soak['ok']} "
                f"| {soak['shed']} | {soak['errors']} | {before['rss_mb']} -> {after['rss_mb']} "
                f"| {before['anonymous_mb']} -> {after['anonymous_mb']} | {before['pss_mb']} -> {after['pss_mb']} "
                f"| {soak['growth']['mb']} |"
            )
    return "\n".join(rows)


def repeated_table(servers: Mapping[str, dict[str, Any]]) -> str:
    """One row per runtime whose repeated-image workload ran: cache off against cache on, and the p50 of a hit."""
    rows = [
        "| runtime | repeated images: clients / photos | cache off img/s | cache on img/s | speedup "
        "| p50 ms, cache off | p50 ms of a hit | hit ratio (cache on) | other CPU cores (off / on) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runtime, server in servers.items():
        repeated = server.get("repeated")
        if repeated:
            off, on = repeated["off"], repeated["on"]
            rows.append(
                f"| {runtime} | {repeated['concurrency']} / {repeated['photos']} | {off['throughput_img_s']} "
                f"| {on['throughput_img_s']} | {_cell(repeated['speedup'])} | {_cell(off['p50_ms'])} "
                f"| {_cell(repeated['hit_p50_ms'])} | {_cell(repeated['hit_ratio'])} "
                f"| {off['cpu']['other_cores']} / {on['cpu']['other_cores']} |"
            )
    return "\n".join(rows)


def markdown(
    command: str, cpu_line: str, in_process: Mapping[str, dict[str, Any]], servers: Mapping[str, dict[str, Any]]
) -> str:
    """Everything the README's Figures section needs, as the script printed it."""
    tables = [runtime_table(in_process, servers), level_table(servers)]
    if any(server.get("storm") for server in servers.values()):
        tables.append(storm_table(servers))
    if any(server.get("soak") for server in servers.values()):
        tables.append(soak_table(servers))
    if any(server.get("repeated") for server in servers.values()):
        tables.append(repeated_table(servers))
    return f"{cpu_line}\n\nCommand: `{command}`\n\n" + "\n\n".join(tables) + "\n"


def target_lines(targets: Sequence[dict[str, Any]]) -> list[str]:
    """One line per target: result, name, measured ratio against its limit, and the numbers behind it."""
    lines = []
    for t in targets:
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.3f}"
        lines.append(f"{t['result']:<4}  {t['target']}: {ratio} {t['op']} {t['limit']:g}  ({t['numbers']})")
    return lines


def noisy_phases(phases: Mapping[str, dict[str, float]], limit: float = NOISY_CORES) -> list[str]:
    """The phases during which processes other than ours used more than `limit` cores."""
    return [f"{name} ({cpu['other_cores']} cores)" for name, cpu in phases.items() if cpu.get("other_cores", 0) > limit]


def phases(in_process: Mapping[str, dict[str, Any]], servers: Mapping[str, dict[str, Any]]) -> dict[str, dict]:
    """Every phase's CPU window, by a name a reader recognises."""
    found = {f"in-process {runtime}": result["cpu"] for runtime, result in in_process.items()}
    for runtime, server in servers.items():
        found |= {f"{runtime} {key} start": start["cpu"] for key, start in server["start"].items()}
        found |= {f"{runtime} c={lv['concurrency']}": lv["cpu"] for lv in server["levels"]}
        if server.get("storm"):
            found[f"{runtime} retry storm"] = server["storm"]["cpu"]
        if server.get("repeated"):
            found |= {f"{runtime} repeated, cache {key}": server["repeated"][key]["cpu"] for key in ("off", "on")}
    return found
