"""app/ holds only what the running service runs, in small modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.helpers import ROOT

APP = ROOT / "app"
MAX_LINES = 250
# What the service process may import beyond the standard library and its own package.
SERVICE_DEPENDENCIES = {
    "gunicorn", "h11", "msgspec", "numpy", "openvino", "PIL", "prometheus_client", "starlette", "torch",
    "torchvision", "uvicorn", "uvicorn_worker", "yaml",
}  # fmt: skip


def test_no_module_is_over_250_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in APP.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_service_imports_no_test_tool_script_or_http_client_library() -> None:
    allowed = SERVICE_DEPENDENCIES | set(sys.stdlib_module_names) | {"app"}
    found = {str(path.relative_to(ROOT)): sorted(_imported_roots(path) - allowed) for path in APP.rglob("*.py")}
    assert {module: extra for module, extra in found.items() if extra} == {}
