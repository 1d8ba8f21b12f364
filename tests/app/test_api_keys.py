"""API keys from a file or a mounted Secret: read once, re-read only when their stat changes, refused when unusable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import api_keys
from app.api_keys import REFRESH_S, ApiKeys, ApiKeysError, read_keys

ALPHA, BETA, GAMMA = "alpha-key-0123456789", "beta-key-0123456789a", "gamma-key-0123456789"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def secret_volume(root: Path, entries: dict[str, str], generation: int) -> Path:
    """What the kubelet writes for a Secret volume: ..<generation>/ with the data, ..data -> it, name -> ..data/name.

    A new generation is written beside the old one and ..data is swapped atomically, as the kubelet does."""
    data = root / f"..2026_01_01_00_00_0{generation}"
    data.mkdir()
    for name, value in entries.items():
        (data / name).write_text(value)
    staged = root / "..data_tmp"
    staged.symlink_to(data.name)
    staged.replace(root / "..data")
    for name in entries:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for name in {p.name for p in root.iterdir() if p.is_symlink() and not p.name.startswith(".")} - set(entries):
        (root / name).unlink()
    return root


def test_a_file_holds_one_key_per_line_blank_lines_and_spaces_ignored(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"  {ALPHA}\n\n{BETA}  \r\n")
    assert read_keys(keys) == [ALPHA, BETA]


def test_a_secret_volume_gives_every_entry_and_skips_its_hidden_entries(tmp_path: Path) -> None:
    secret_volume(tmp_path, {"old": ALPHA + "\n", "new": BETA}, generation=1)
    assert sorted(read_keys(tmp_path)) == sorted([ALPHA, BETA])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "holds no API key"),
        ("\n  \n", "holds no API key"),
        ("short\n", "key number 1 is shorter than 16"),
        (f"{ALPHA}\ntoo-short\n", "key number 2 is shorter than 16"),
    ],
)
def test_unusable_keys_are_refused_with_the_setting_named(tmp_path: Path, content: str, expected: str) -> None:
    keys = tmp_path / "keys"
    keys.write_text(content)
    with pytest.raises(ApiKeysError, match=expected) as caught:
        ApiKeys(keys)
    assert str(caught.value).startswith(f"api_keys_file {keys}")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError, match="cannot read the API keys"):
        ApiKeys(tmp_path / "absent")


def test_every_key_is_accepted_and_nothing_else(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{ALPHA}\n{BETA}\n")
    accepted = ApiKeys(keys)
    assert accepted.accepts(ALPHA.encode()) and accepted.accepts(BETA.encode())
    for wrong in (b"", GAMMA.encode(), ALPHA[:-1].encode(), (ALPHA + "x").encode(), f"{ALPHA}\n{BETA}".encode()):
        assert not accepted.accepts(wrong), wrong


def test_every_key_is_compared_whichever_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{ALPHA}\n{BETA}\n{GAMMA}\n")
    accepted = ApiKeys(keys)
    calls: list[bool] = []
    real = api_keys.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(real(a, b))
        return calls[-1]

    monkeypatch.setattr(api_keys.hmac, "compare_digest", counting)
    for presented in (ALPHA, GAMMA, "none-of-them-at-all"):
        calls.clear()
        accepted.accepts(presented.encode())
        assert len(calls) == 3, presented  # the first key matching does not stop the loop


def test_a_changed_file_is_reread_only_after_the_refresh_interval(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{ALPHA}\n")
    clock = Clock()
    accepted = ApiKeys(keys, clock=clock)
    keys.write_text(f"{BETA}\n")
    os.utime(keys, ns=(1, 1))  # a stat that surely differs, whatever the file system's time resolution
    clock.now += REFRESH_S / 2
    assert accepted.accepts(ALPHA.encode()) and not accepted.accepts(BETA.encode())
    clock.now += REFRESH_S
    assert accepted.accepts(BETA.encode()) and not accepted.accepts(ALPHA.encode())


def test_an_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{ALPHA}\n")
    clock = Clock()
    accepted = ApiKeys(keys, clock=clock)
    reads: list[Path] = []
    monkeypatch.setattr(api_keys, "read_keys", lambda path, setting="": reads.append(path) or [BETA])
    for _ in range(5):
        clock.now += REFRESH_S
        assert accepted.accepts(ALPHA.encode())
    assert reads == []


def test_a_secret_rotation_adds_and_removes_keys(tmp_path: Path) -> None:
    secret_volume(tmp_path, {"old": ALPHA}, generation=1)
    clock = Clock()
    accepted = ApiKeys(tmp_path, clock=clock)
    secret_volume(tmp_path, {"old": ALPHA, "new": BETA}, generation=2)
    clock.now += REFRESH_S
    assert accepted.accepts(ALPHA.encode()) and accepted.accepts(BETA.encode())
    secret_volume(tmp_path, {"new": BETA}, generation=3)
    clock.now += REFRESH_S
    assert accepted.accepts(BETA.encode()) and not accepted.accepts(ALPHA.encode())


def test_a_file_emptied_or_removed_at_run_time_keeps_the_keys_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{ALPHA}\n")
    clock = Clock()
    accepted = ApiKeys(keys, clock=clock)
    keys.write_text("")
    clock.now += REFRESH_S
    assert accepted.accepts(ALPHA.encode())
    keys.unlink()
    clock.now += REFRESH_S
    assert accepted.accepts(ALPHA.encode())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all("API keys not reloaded, the 1 key(s) in force stay" in e for e in errors)
    keys.write_text(f"{BETA}\n")  # fixed: the new keys apply
    clock.now += REFRESH_S
    assert accepted.accepts(BETA.encode()) and not accepted.accepts(ALPHA.encode())
