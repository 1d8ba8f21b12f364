"""`visionserve predict` against a real server (random weights, both heads), a dead port and a proxy's error page."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from app.cli.predict import Picture, batches
from app.models.labels import CIFAR10_LABELS, IMAGENET_LABELS
from tests.app.cli.command import own_lines, visionserve
from tests.harness.local_server import LocalServer, free_port
from tests.helpers import ROOT, encode, photo, stand_in

LABELS = {"imagenet": set(IMAGENET_LABELS), "cifar10": set(CIFAR10_LABELS)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("photos")
    cat, coffee = folder / "cat.jpg", folder / "coffee-cup.png"
    cat.write_bytes(encode(photo("chelsea")))
    coffee.write_bytes(encode(photo("coffee"), "PNG"))
    return cat, coffee


def _rows(stdout: str) -> list[tuple[str, str, list[tuple[str, float]]]]:
    """Parse `name  head  label score, label score, ...` lines."""
    rows = []
    for line in stdout.splitlines():
        name, head, labels = re.split(r"\s{2,}", line, maxsplit=2)
        rows.append((name, head, [(e.rsplit(" ", 1)[0], float(e.rsplit(" ", 1)[1])) for e in labels.split(", ")]))
    return rows


@pytest.mark.service
def test_a_table_line_per_image_and_head_with_real_labels_and_a_random_weights_warning(
    server: LocalServer, photos: tuple[Path, Path]
) -> None:
    cat, coffee = photos
    done = visionserve(
        "predict", "--url", server.url, "--heads", "imagenet,cifar10", "--top-k", "3", str(cat), str(coffee)
    )
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert {(name, head) for name, head, _ in rows} == {(str(p), h) for p in photos for h in ("imagenet", "cifar10")}
    assert [name for name, _, _ in rows] == [str(cat)] * 2 + [str(coffee)] * 2  # in the order given
    for _, head, top in rows:
        assert len(top) == 3 and all(label in LABELS[head] and 0 <= score <= 1 for label, score in top)
    assert len({re.match(r"\S+\s+\S+\s+", line).end() for line in done.stdout.splitlines()}) == 1  # aligned
    (warning,) = own_lines(done.stderr)
    assert "RANDOM weights (imagenet, cifar10)" in warning and "meaningless" in warning


@pytest.mark.service
def test_json_prints_the_servers_answer(server: LocalServer, photos: tuple[Path, Path]) -> None:
    done = visionserve("predict", "--url", server.url, "--json", *map(str, photos))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [set(p["heads"]) for p in answer["predictions"]] == [{"imagenet"}, {"imagenet"}]  # the server's default
    assert set(answer["weights"]) == {"imagenet"}


@pytest.mark.service
def test_stdin_and_the_built_in_sample(server: LocalServer, photos: tuple[Path, Path]) -> None:
    done = visionserve(
        "predict", "--url", server.url, "--sample", "-", "--heads", "cifar10", stdin=photos[0].read_bytes()
    )
    assert done.returncode == 0, done.stderr
    assert [(name, head) for name, head, _ in _rows(done.stdout)] == [("(sample)", "cifar10"), ("(stdin)", "cifar10")]


@pytest.mark.service
def test_the_servers_refusal_is_printed_with_its_code_and_exit_1(server: LocalServer, tmp_path: Path) -> None:
    text = tmp_path / "cat.txt"
    text.write_text("not a picture")
    done = visionserve("predict", "--url", server.url, str(text))
    assert done.returncode == 1
    assert own_lines(done.stderr)[-1].startswith(f"visionserve predict: {text}: 415 not_an_image: ")
    unknown = visionserve("predict", "--url", server.url, "--heads", "dogs", "--sample")
    assert unknown.returncode == 1 and "400 unknown_head: " in own_lines(unknown.stderr)[-1]


def test_nothing_listening_exits_1_with_one_line() -> None:
    done = visionserve("predict", "--url", f"http://127.0.0.1:{free_port()}", "--sample")
    assert done.returncode == 1 and done.stdout == ""
    (line,) = own_lines(done.stderr)
    assert "cannot reach" in line and line.endswith("Connection refused")


def test_a_missing_file_exits_2_before_anything_is_sent(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    done = visionserve("predict", "--url", f"http://127.0.0.1:{free_port()}", str(missing))
    assert done.returncode == 2
    assert own_lines(done.stderr) == [f"visionserve predict: {missing}: No such file or directory"]


class _BadGateway(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    """An HTTP server that answers every GET with an HTML 502, as an ingress with no backend does."""
    with stand_in(_BadGateway) as url:
        yield url


def test_an_error_page_that_is_not_ours_is_shown_briefly(proxy: str) -> None:
    done = visionserve("predict", "--url", proxy, "--sample")
    assert done.returncode == 1
    (line,) = own_lines(done.stderr)
    assert line == "visionserve predict: 502 Bad Gateway: <html><body>502 Bad Gateway</body></html>"


def test_ctrl_c_exits_130_quietly() -> None:
    # Ctrl-C's default in the child, as a shell gives a foreground command: a handled signal is reset to its default
    # in the child, an ignored one (a background job's SIGINT) would stay ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        command = [sys.executable, "-m", "app.cli", "predict", "--url", url, "--sample", "--timeout", "120"]
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
            signal.signal(signal.SIGINT, previous)
            connection, _ = listener.accept()  # the command is waiting for its answer now
            with connection:
                child.send_signal(signal.SIGINT)
                try:
                    stdout, stderr = child.communicate(timeout=60)
                finally:
                    child.kill()  # a no-op once it has exited
    assert child.returncode == 130 and stdout == b"" and stderr == b""


def test_images_are_grouped_within_the_servers_limits() -> None:
    pictures = [Picture(str(i), b"x" * size) for i, size in enumerate([100, 100, 100, 5000, 100, 100, 100])]
    names = [[p.name for p in batch] for batch in batches(pictures, max_images=2, max_bytes=2000)]
    assert names == [["0", "1"], ["2"], ["3"], ["4", "5"], ["6"]]  # "3" is too large even alone: sent, for its 413
