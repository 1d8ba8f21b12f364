"""The real service under gunicorn and a real Prometheus (Debian's binary) on 127.0.0.1, scraping every second.

Traffic (good, bad, and a burst that overflows a tiny queue) flows; then every dashboard query on a visionserve
metric returns data through Prometheus' HTTP API, the shedding alert fires, and once the service is stopped the
down alert fires. The rules are the shipped file with every `for` shortened to 2 s.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from tests.harness.local_server import LocalServer, free_port
from tests.helpers import encode, photo, require_tool
from tests.monitoring.files import ALERTS, DASHBOARDS, MONITORING, panel_queries, rules

pytestmark = [pytest.mark.service, pytest.mark.slow]
TINY_QUEUE = {
    "weights": "random",
    "cifar_head": "random",
    "workers": 2,
    "torch_threads": 1,
    "max_queue": 2,
    "max_images": 1,
    "max_queue_ms": 0,
    "max_batch_size": 2,
    "max_wait_ms": 0,
    "cache_max_entries": 16,  # the cache panels have hits and misses to show
}
REPEATS = 3  # of one image: with 2 workers, one of them sees it twice, a cache hit


@dataclass
class Stack:
    service: LocalServer
    prometheus: subprocess.Popen
    url: str

    def query(self, expr: str) -> list[dict]:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def alert_state(self, name: str) -> str | None:
        answer = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        states = [a["state"] for a in answer["data"]["alerts"] if a["labels"]["alertname"] == name]
        return "firing" if "firing" in states else (states[0] if states else None)

    def wait_for_alert(self, name: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alert_state(name) != "firing":
            time.sleep(0.5)
        return self.alert_state(name)


def _configure(workdir: Path, target_port: int) -> Path:
    """monitoring/prometheus.yml, pointed at our service, scraping every second; rules with short `for`."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    (workdir / "alerts.yaml").write_text(yaml.safe_dump(rules))
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{target_port}"]}]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    service = LocalServer(TINY_QUEUE).start().wait_ready()
    port = free_port()
    with (workdir / "prometheus.log").open("w") as log:  # the child keeps its own copy of the descriptor
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={_configure(workdir, service.port)}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert prometheus.poll() is None, (workdir / "prometheus.log").read_text()
            time.sleep(0.3)
        running = Stack(service, prometheus, url)
        # One prediction before the first scrape: every series then has a baseline sample, so the traffic that
        # follows shows up as an increase (rate) however the scrapes fall during the burst.
        baseline = requests.post(
            f"{service.url}/v1/predict", data=encode(photo()), timeout=60, headers={"Content-Type": "image/jpeg"}
        )
        assert baseline.status_code == 200
        while time.monotonic() < deadline and not running.query("visionserve_requests_total"):
            time.sleep(0.5)  # target discovery reaches the scrape loop after a few seconds
        yield running
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        service.stop()
        service.remove_log()


def _drive_traffic(url: str) -> list[int]:
    """Good requests on both heads, one image repeated, bad inputs, and a burst far beyond a queue of 2 (of images
    all different, so the response cache answers none of them and they all need the queue)."""
    jpeg = encode(photo())
    statuses = []
    repeated = encode(photo("coffee"))
    for _ in range(REPEATS):
        statuses.append(
            requests.post(
                f"{url}/v1/predict", data=repeated, timeout=60, headers={"Content-Type": "image/jpeg"}
            ).status_code
        )
    for heads in ("imagenet", "cifar10", "imagenet,cifar10"):
        statuses.append(
            requests.post(
                f"{url}/v1/predict?heads={heads}", data=jpeg, timeout=60, headers={"Content-Type": "image/jpeg"}
            ).status_code
        )
    for body, content_type in ((b"", "image/jpeg"), (encode(photo(), "TIFF"), "image/jpeg"), (jpeg, "text/plain")):
        statuses.append(
            requests.post(
                f"{url}/v1/predict", data=body, headers={"Content-Type": content_type}, timeout=60
            ).status_code
        )

    burst = [encode(photo(), quality=quality) for quality in range(40, 88)]

    def one(image: bytes) -> int:
        return requests.post(
            f"{url}/v1/predict", data=image, headers={"Content-Type": "image/jpeg"}, timeout=60
        ).status_code

    with ThreadPoolExecutor(24) as pool:
        statuses += list(pool.map(one, burst))
    return statuses


def test_dashboards_show_data_shedding_alerts_and_down_alerts(stack: Stack) -> None:
    statuses = _drive_traffic(stack.service.url)
    assert 200 in statuses and 503 in statuses and 400 in statuses and 415 in statuses
    queries = [
        (
            f"{path.name}: {title}",
            expr.replace("$__rate_interval", "5m")
            .replace("$namespace", ".*")
            .replace("$job", ".*")
            .replace("$pod", ".*"),
        )
        for path in DASHBOARDS
        for title, expr in panel_queries(path)
        if "visionserve_" in expr  # cAdvisor / kube-state-metrics panels need a cluster
    ]

    def without_data() -> list[str]:
        """Panels whose query has no finite value yet (a NaN-only answer is no data either)."""
        return [
            f"{name}: {expr}"
            for name, expr in queries
            if not any(math.isfinite(float(series["value"][1])) for series in stack.query(expr))
        ]

    deadline = time.monotonic() + 30  # rates need two scrapes after the burst, whatever the scrape timing
    empty = without_data()
    while empty and time.monotonic() < deadline:
        time.sleep(1)
        empty = without_data()
    assert not empty, empty
    for expr in (
        'sum(visionserve_predictions_total{head="cifar10"})',
        "sum(visionserve_batch_size_count)",
        'sum(visionserve_rejections_total{reason="unsupported_media_type"})',
        "sum(visionserve_cache_hits_total)",
        "sum(visionserve_cache_entries)",
    ):
        assert float(stack.query(expr)[0]["value"][1]) > 0, expr

    recorded = [rule["record"] for rule in rules() if "record" in rule]
    missing = recorded
    deadline = time.monotonic() + 20  # the next rule evaluations record them
    while missing and time.monotonic() < deadline:
        missing = [name for name in recorded if not stack.query(name)]
        time.sleep(0.5)
    assert recorded and not missing, missing  # the label values the SLO rules select on are real

    assert stack.wait_for_alert("VisionserveShedding", timeout=30) == "firing"
    assert stack.alert_state("VisionserveDown") is None

    stack.service.stop()
    assert stack.wait_for_alert("VisionserveDown", timeout=45) == "firing"
