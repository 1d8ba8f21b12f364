"""The page at / in a real headless Chromium (Debian's `chromium`, driven by Playwright) against a real gunicorn.

A photo uploaded in the page gets the same top label and score as POST /v1/predict gives for the same bytes; the
random-weights warning shows; drop, paste and the keyboard work; the API's refusals are shown with their JSON
message; with API keys on, the page loads without one and sends the one typed in as a Bearer token. Every test
fails on a console error, an uncaught exception or a Content-Security-Policy violation.

The screenshot the README shows (docs/page.png) is rewritten by `make screenshot`
(VISIONSERVE_UPDATE_SCREENSHOT=1); otherwise it goes to a temporary folder and docs/page.png is only checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from tests.conftest import RANDOM_SETTINGS
from tests.harness.local_server import LocalServer
from tests.helpers import ROOT, encode, photo, require_tool

pytestmark = [pytest.mark.service, pytest.mark.slow]

SCREENSHOT = ROOT / "docs" / "page.png"
UPDATE_SCREENSHOT = os.environ.get("VISIONSERVE_UPDATE_SCREENSHOT") == "1"
VIEWPORT = {"width": 1200, "height": 900}
KEY = "browser-key-0123456789abcdef"
TIMEOUT_MS = 60_000  # a prediction on this CPU, random weights, torch runtime: well under it
# Records violations of the page's Content-Security-Policy (Chromium also logs them as console errors).
WATCH_CSP = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));"
)


@dataclass
class Watched:
    """A page, and what went wrong in it."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.problems.append(f"console {message.type}: {message.text}")

    def assert_clean(self, *answered: int) -> None:
        """No problem but the browser's own note of each answer with one of these statuses (expected refusals)."""
        expected = tuple(f"Failed to load resource: the server responded with a status of {n} " for n in answered)
        problems = [problem for problem in self.problems if not any(note in problem for note in expected)]
        violations = self.page.evaluate("window.__violations")
        assert (problems, violations) == ([], [])


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """Debian's chromium, looked for before any server starts (autouse: first among this module's fixtures)."""
    return require_tool("chromium")


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # the sandbox refuses to run as root (CI runs the suite as root); Playwright's own browsers are not used
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def _open(browser: Browser, url: str, routes: Mapping[str, Callable[[Route], None]] | None = None) -> Iterator[Watched]:
    """A fresh context (no storage shared with other tests) and its page at /, watched; `routes` answer some URLs."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    for pattern, handler in (routes or {}).items():
        page.route(pattern, handler)
    watched = Watched(page)
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    page.add_init_script(WATCH_CSP)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/")
    try:
        yield watched
    finally:
        context.close()


@pytest.fixture
def opened(browser: Browser, server: LocalServer) -> Iterator[Watched]:
    """The page of the session's server (random weights, both heads), freshly opened."""
    with _open(browser, server.url) as watched:
        yield watched


def _upload(page: Page, name: str, body: bytes, mime_type: str = "image/jpeg") -> None:
    page.get_by_label("Choose an image").set_input_files(files=[{"name": name, "mimeType": mime_type, "buffer": body}])


def _top(page: Page, head: str) -> tuple[str, float]:
    first = page.locator(f'.head[data-head="{head}"] .bar').first
    return first.get_attribute("data-label") or "", float(first.get_attribute("data-score") or "nan")


def _api_top(url: str, body: bytes, heads: str, top_k: int) -> dict[str, tuple[str, float]]:
    answer = requests.post(
        f"{url}/v1/predict", params={"heads": heads, "top_k": top_k}, data=body, headers={"Content-Type": "image/jpeg"}
    )
    assert answer.status_code == 200, answer.text
    ranked = answer.json()["predictions"][0]["heads"]
    return {head: (ranked[head][0]["label"], ranked[head][0]["score"]) for head in ranked}


def test_a_photo_gets_the_top_label_and_score_of_the_api(
    opened: Watched, server: LocalServer, jpeg_bytes: bytes, tmp_path: Path
) -> None:
    page = opened.page
    expect(page.locator("#model-line")).to_contain_text("resnet50")
    warning = page.get_by_role("alert").filter(has_text="Random weights")
    expect(warning).to_be_visible()
    expect(page.locator("#weights")).to_contain_text("random")
    page.get_by_label("CIFAR-10").check()
    _upload(page, "chelsea.jpg", jpeg_bytes)
    for head in ("imagenet", "cifar10"):
        expect(page.locator(f'.head[data-head="{head}"] .bar')).to_have_count(5)
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#latency")).to_have_text(re.compile(r"Round trip \d+ ms; server [\d.]+ ms"))

    expected = _api_top(server.url, jpeg_bytes, "imagenet,cifar10", 5)
    for head, (label, score) in expected.items():
        shown_label, shown_score = _top(page, head)
        assert shown_label == label and shown_score == pytest.approx(score, rel=1e-3, abs=1e-6), head
        first = page.locator(f'.head[data-head="{head}"] .bar').first
        expect(first.locator(".label")).to_have_text(label)
        shown = first.locator(".score").text_content() or ""
        if shown == "<0.01%":
            assert score * 100 < 0.01
        else:
            assert shown.endswith("%") and float(shown[:-1]) == pytest.approx(score * 100, abs=0.0051), shown

    shot = tmp_path / "page.png"
    page.screenshot(path=shot, full_page=True)
    if UPDATE_SCREENSHOT:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
    with Image.open(shot) as taken, Image.open(SCREENSHOT) as committed:
        assert taken.format == committed.format == "PNG"
        assert taken.width == committed.width == VIEWPORT["width"]
    opened.assert_clean()


def test_drop_paste_and_the_keyboard_classify(opened: Watched, server: LocalServer) -> None:
    page = opened.page
    expect(page.locator("#model-line")).to_contain_text("resnet50")
    coffee = encode(photo("coffee"))
    page.evaluate("(bytes) => window.__photo = new Uint8Array(bytes)", list(coffee))
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File([window.__photo], "dropped.jpg", {type: "image/jpeg"}));
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    expect(page.locator("#file-name")).to_contain_text("dropped.jpg")
    expect(page.locator('.head[data-head="imagenet"] .bar')).to_have_count(5)
    assert _top(page, "imagenet")[0] == _api_top(server.url, coffee, "imagenet", 5)["imagenet"][0]

    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File([window.__photo], "pasted.jpg", {type: "image/jpeg"}));
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
        }"""
    )
    expect(page.locator("#file-name")).to_contain_text("pasted.jpg")

    top_k = page.get_by_label("Top-k")
    top_k.focus()
    top_k.fill("3")
    top_k.press("Enter")  # submits the form: no mouse needed
    expect(page.locator('.head[data-head="imagenet"] .bar')).to_have_count(3)
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_label("CIFAR-10")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator('.head[data-head="cifar10"] .bar')).to_have_count(3)
    opened.assert_clean()


def test_refusals_show_the_servers_json_message(opened: Watched) -> None:
    page = opened.page
    expect(page.locator("#model-line")).to_contain_text("resnet50")
    _upload(page, "notes.txt", b"not a picture at all", "text/plain")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("415 unsupported_content_type")
    expect(error).to_contain_text("Request id:")
    expect(page.locator("#heads .bar")).to_have_count(0)

    # an overloaded server (the real 503 is tested in test_overload.py): the page shows its words and Retry-After
    overloaded = {"error": {"code": "queue_full", "message": "the queue is full (64 images)", "request_id": "r-503"}}
    page.route(
        "**/v1/predict?*",
        lambda route: route.fulfill(
            status=503, headers={"Retry-After": "3"}, content_type="application/json", body=json.dumps(overloaded)
        ),
    )
    page.get_by_role("button", name="Classify", exact=True).click()
    expect(error).to_contain_text("503 queue_full: the queue is full (64 images)")
    expect(error).to_contain_text("retry after 3 s")
    expect(error).to_contain_text("Request id: r-503")
    opened.assert_clean(415, 503)


def _without_cifar10(route: Route) -> None:
    """The server's own /v1/models, as a server with `cifar_head: none` answers it (app/frontends/rest_v1.py)."""
    answer = route.fetch().json()
    weights = {"kind": "none", "source": "not configured: the cifar10 head is unavailable", "sha256": None}
    answer["heads"]["cifar10"] = {"available": False, "classes": 10, "labels": [], "weights": weights}
    route.fulfill(json=answer)


def test_without_the_cifar10_head_the_page_offers_imagenet_only(
    browser: Browser, server: LocalServer, jpeg_bytes: bytes
) -> None:
    with _open(browser, server.url, {"**/v1/models": _without_cifar10}) as watched:
        page = watched.page
        cifar10 = page.get_by_label("CIFAR-10")
        expect(cifar10).to_be_disabled()
        expect(cifar10).not_to_be_checked()
        expect(page.locator("#cifar10-note")).to_have_text("not loaded on this server")
        expect(page.locator("#weights")).to_contain_text("not loaded on this server")
        _upload(page, "chelsea.jpg", jpeg_bytes)
        expect(page.locator('.head[data-head="imagenet"] .bar')).to_have_count(5)
        expect(page.locator(".head")).to_have_count(1)
        watched.assert_clean()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    keys = tmp_path_factory.mktemp("page-keys") / "keys"
    keys.write_text(f"{KEY}\n")
    with LocalServer({**RANDOM_SETTINGS, "workers": 1, "api_keys_file": keys}) as running:
        yield running


def test_with_api_keys_the_page_loads_and_sends_the_key_typed_in(
    browser: Browser, keyed: LocalServer, jpeg_bytes: bytes
) -> None:
    with _open(browser, keyed.url) as watched:
        page = watched.page
        error = page.locator("#error")
        expect(error).to_contain_text("401 unauthorized: an API key is required")
        expect(page.get_by_label("API key")).to_be_focused()
        sent: list[str | None] = []
        page.on("request", lambda request: "/v1/" in request.url and sent.append(request.headers.get("authorization")))
        page.get_by_label("API key").fill(KEY)
        page.get_by_label("API key").press("Tab")  # `change`: the page retries /v1/models with the key
        expect(page.locator("#model-line")).to_contain_text("resnet50")
        _upload(page, "chelsea.jpg", jpeg_bytes)
        expect(page.locator('.head[data-head="imagenet"] .bar')).to_have_count(5)
        expect(error).to_be_hidden()
        assert set(sent) == {f"Bearer {KEY}"}
        assert page.evaluate("sessionStorage.getItem('visionserve.apiKey')") == KEY
        assert page.evaluate("localStorage.length") == 0
        watched.assert_clean(401)
