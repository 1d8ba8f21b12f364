"""The page at /, in process: its files, content types, cache validators and security headers; what it may load;
that it needs no API key while the API still does; bounded route labels; its place in /openapi.json; the wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.frontends.page import ASSETS, CSP, Asset
from app.main import ROUTES, create_app
from app.settings import Settings
from tests.app.test_request_ids_and_access_log import Lines, access  # noqa: F401 - the fixture
from tests.helpers import ROOT
from tests.server.metrics_text import parse

STATIC = ROOT / "app" / "static"
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONTENT_TYPES = {
    "/": "text/html; charset=utf-8",
    "/static/page.js": "text/javascript; charset=utf-8",
    "/static/page.css": "text/css; charset=utf-8",
    "/static/icon.svg": "image/svg+xml",
}
KEY = "page-test-key-0123456789"


@pytest.fixture(scope="module")
def app_client() -> TestClient:
    """The app without its lifespan (no model): the page needs none."""
    return TestClient(create_app(Settings(weights="random")))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    keys = tmp_path_factory.mktemp("page-keys") / "keys"
    keys.write_text(f"{KEY}\n")
    return TestClient(create_app(Settings(weights="random", api_keys_file=str(keys))))


def _assert_secure(headers: Mapping[str, str]) -> None:
    assert headers["content-security-policy"] == EXPECTED_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_every_file_in_the_package_is_served_and_nothing_else() -> None:
    assert (
        set(CONTENT_TYPES)
        == set(ASSETS)
        == {f"/static/{path.name}" for path in STATIC.iterdir()} - {"/static/index.html"} | {"/"}
    )
    assert CSP == EXPECTED_CSP


@pytest.mark.parametrize(("path", "content_type"), sorted(CONTENT_TYPES.items()))
def test_each_file_has_its_content_type_validators_and_the_security_headers(
    app_client: TestClient, path: str, content_type: str
) -> None:
    response = app_client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    _assert_secure(response.headers)
    name = "index.html" if path == "/" else path.removeprefix("/static/")
    assert response.content == (STATIC / name).read_bytes()
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert response.headers["cache-control"] == "no-cache"
    head = app_client.head(path)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == response.headers["etag"]


@pytest.mark.parametrize("path", sorted(CONTENT_TYPES))
def test_a_matching_if_none_match_is_a_304_with_the_same_headers(app_client: TestClient, path: str) -> None:
    etag = app_client.get(path).headers["etag"]
    for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        revalidated = app_client.get(path, headers={"If-None-Match": given})
        assert revalidated.status_code == 304 and revalidated.content == b"", given
        assert revalidated.headers["etag"] == etag
        _assert_secure(revalidated.headers)
    for stale in ('"0123"', etag.strip('"'), ""):
        assert app_client.get(path, headers={"If-None-Match": stale}).status_code == 200, stale


def test_the_etag_follows_the_content() -> None:
    assert Asset.load("a.js", b"one").etag != Asset.load("a.js", b"two").etag
    assert Asset.load("a.js", b"one").etag == Asset.load("b.js", b"one").etag


def test_other_methods_and_unknown_files_are_json_refusals(app_client: TestClient) -> None:
    refused = app_client.post("/", content=b"x")
    assert refused.status_code == 405 and refused.json()["error"]["code"] == "method_not_allowed"
    for path in ("/static/nope.js", "/static/", "/static/../app/main.py", "/index.html"):
        missing = app_client.get(path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", path


class _Page(HTMLParser):
    """What index.html loads and how: every tag's attributes, and scripts' and styles' inline text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in {"script", "style"} else None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def test_the_html_has_no_inline_script_or_style_and_loads_only_its_own_files() -> None:
    page = _Page()
    page.feed((STATIC / "index.html").read_text())
    assert page.inline == []
    assert not [tag for tag, _ in page.tags if tag == "style"]
    attributes = {name for _, attrs in page.tags for name in attrs}
    assert not {name for name in attributes if name == "style" or name.startswith("on")}
    loaded = {attrs.get("src") or attrs.get("href") for tag, attrs in page.tags if tag in {"script", "link", "img"}}
    loaded.discard(None)
    assert loaded == set(ASSETS) - {"/"}  # every file is used, and nothing comes from elsewhere
    assert all(attrs.get("src") for tag, attrs in page.tags if tag == "script")
    links = {attrs["href"] for tag, attrs in page.tags if tag == "a"}
    assert links <= {route.path for route in ROUTES}


def test_the_script_and_the_style_reach_nothing_outside_this_origin() -> None:
    script = (STATIC / "page.js").read_text()
    style = (STATIC / "page.css").read_text()
    assert not re.search(r"https?:|//[a-z]", script.replace("// ", ""), re.IGNORECASE)
    assert not re.search(r"url\(|@import|https?:", style, re.IGNORECASE)
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", 'setAttribute("style'):
        assert forbidden not in script, forbidden  # the CSP would refuse eval; the answers are written as text
    assert "localStorage" not in script  # the API key stays in this tab (sessionStorage) at most
    called = set(re.findall(r'["`](/v1/[a-z]+)', script))
    assert called == {"/v1/models", "/v1/predict"} and called <= {route.path for route in ROUTES}


def test_the_page_needs_no_api_key_but_the_api_still_does(keyed: TestClient) -> None:
    for path in CONTENT_TYPES:
        assert keyed.get(path).status_code == 200, path
    for path in ("/v1/models", "/static/nope.js", "/openapi.json"):
        assert keyed.get(path).status_code == 401, path
    assert keyed.post("/v1/predict", content=b"x").status_code == 401


def test_routes_are_labelled_by_file_and_unknown_paths_stay_unmatched(access: Lines) -> None:  # noqa: F811
    app_client = TestClient(create_app(Settings(weights="random")))  # its own metrics: only these requests
    for number in range(20):
        app_client.get(f"/static/made-up-{number}.js", headers={"X-Request-ID": f"page-miss-{number}"})
    app_client.get("/", headers={"X-Request-ID": "page-hit"})
    app_client.get("/static/page.js?v=123", headers={"X-Request-ID": "page-js"})
    routes = {
        labels["route"]
        for name, labels, _ in parse(app_client.get("/metrics").text)
        if name == "visionserve_requests_total"
    }
    assert routes == {"/", "/static/page.js", "unmatched"}
    assert [line["route"] for line in access.by_id("page-hit")] == ["/"]
    assert [line["route"] for line in access.by_id("page-js")] == ["/static/page.js"]
    assert {line["route"] for n in range(20) for line in access.by_id(f"page-miss-{n}")} == {"<unmatched>"}


def test_openapi_describes_the_page_as_html_open_to_all(app_client: TestClient, keyed: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    for path, content_type in CONTENT_TYPES.items():
        responses = spec["paths"][path]["get"]["responses"]
        assert set(responses["200"]["content"]) == {content_type.split(";")[0]}
        assert {"Content-Security-Policy", "ETag"} <= set(responses["200"]["headers"])
        assert "304" in responses
    secured = keyed.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    for path in CONTENT_TYPES:
        operation = secured["paths"][path]["get"]
        assert operation["security"] == [] and "401" not in operation["responses"], path


def test_the_wheel_ships_the_page(tmp_path: Path) -> None:
    """Built from what the image's build copies (pyproject.toml, README.md, app/), as the Dockerfile builds it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist"]
    command.append("./source")  # a path: a bare name would be looked up on the package index
    built = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "dist").glob("visionserve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"app/static/{path.name}" for path in STATIC.iterdir()} <= names
