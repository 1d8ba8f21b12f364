"""The README's copy-paste examples for the Open Inference Protocol and KServe V1 run as written against a real
server (only its address changed), with a cat.jpg and a dog.png beside them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.local_server import LocalServer
from tests.helpers import ROOT, encode, photo, require_tool

pytestmark = [pytest.mark.service]

README = (ROOT / "README.md").read_text()
SECTION = README[README.index("### Open Inference Protocol V2") : README.index("### Errors")]
EXAMPLES = re.findall(r"```(bash|python)\n(.*?)```", SECTION, re.DOTALL)


def test_each_protocol_has_a_curl_and_a_python_example() -> None:
    oip, kserve = SECTION.split("### KServe V1")
    for text in (oip, kserve):
        assert "```bash\ncurl" in text or "\ncurl " in text
        assert "```python\n" in text


@pytest.mark.parametrize(("kind", "code"), EXAMPLES, ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(EXAMPLES)])
def test_the_example_runs(server: LocalServer, tmp_path: Path, kind: str, code: str) -> None:
    (tmp_path / "cat.jpg").write_bytes(encode(photo("chelsea")))
    (tmp_path / "dog.png").write_bytes(encode(photo("coffee"), "PNG"))
    here = server.url.removeprefix("http://")
    code = code.replace("127.0.0.1:8080", here)
    if kind == "bash":
        require_tool("curl")
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        command = [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and '"error"' not in done.stdout, done.stdout
