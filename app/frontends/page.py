"""The page at /: a small, self-contained HTML page that calls the public API like any client.

Its files ship in the package (app/static/, package data): index.html at /, every other file at /static/<name>.
Each file is read once, at import, and answered with its content type, an ETag (304 on a matching If-None-Match,
`Cache-Control: no-cache` so a browser revalidates after an upgrade) and the same security headers: a strict
Content-Security-Policy (no inline script or style, nothing from another origin), nosniff, no referrer.
One route per file: the metrics and the access log label each by its own path, and any other path is unmatched.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

INDEX = "index.html"
STATIC_PREFIX = "/static/"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",  # the picture's preview is a blob: URL
        "connect-src 'self'",  # the API, on this origin
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CACHE_CONTROL = "no-cache"  # cache, but ask first: the ETag makes that a 304 until the package changes
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    """One file of the page, as it is answered."""

    path: str  # the URL path
    body: bytes
    media_type: str
    etag: str

    @classmethod
    def load(cls, name: str, body: bytes) -> Asset:
        suffix = "." + name.rsplit(".", 1)[-1]
        media_type = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        path = "/" if name == INDEX else STATIC_PREFIX + name
        return cls(path, body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _load_assets() -> dict[str, Asset]:
    """Every file in app/static, by URL path."""
    folder = resources.files("app") / "static"
    assets = [Asset.load(entry.name, entry.read_bytes()) for entry in folder.iterdir() if entry.is_file()]
    return {asset.path: asset for asset in sorted(assets, key=lambda asset: asset.path)}


ASSETS = _load_assets()
PAGE_PATHS = frozenset(ASSETS)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, as RFC 9110 asks for this header)."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _endpoint(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint that answers one file."""

    async def serve(request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": CACHE_CONTROL}
        if _matches(request.headers.get("if-none-match", ""), asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    serve.__name__ = serve.__qualname__ = f"page{asset.path.replace('/', '_').replace('.', '_')}"
    return serve


ROUTES = [Route(path, _endpoint(asset), methods=["GET"]) for path, asset in ASSETS.items()]


def _operation(asset: Asset) -> dict:
    headers = {
        name: {"schema": {"type": "string"}, "description": f"`{value}`"}
        for name, value in {**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL}.items()
    }
    headers["ETag"] = {"schema": {"type": "string"}, "description": "The file's version; send it as If-None-Match."}
    what = "The page to try the API in a browser." if asset.path == "/" else f"A file of the page ({asset.media_type})."
    return {
        "get": {
            "summary": what + " No API key needed (the page asks for one when the API does).",
            "responses": {
                "200": {
                    "description": what,
                    "headers": headers,
                    "content": {asset.media_type: {"schema": {"type": "string"}}},
                },
                "304": {"description": "Not modified: If-None-Match names this ETag."},
            },
        }
    }


def openapi_paths() -> dict[str, dict]:
    """The page's entries in /openapi.json: text/html at /, its files under /static/."""
    return {path: _operation(asset) for path, asset in ASSETS.items()}
