"""API keys: read from a file (one key per line) or a directory of files (a mounted Secret), refreshed when they change.

A mounted Kubernetes Secret is updated in place, so the keys are re-read when the files' stat changes, checked at
most every `REFRESH_S` seconds: no request ever reads a file. Keys are kept as sha256 digests and a presented key is
compared with every one of them in constant time, so neither its length nor which key matched shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("visionserve")

REFRESH_S = 5.0  # at most one stat of the keys per this many seconds
MIN_KEY_LENGTH = 16
Fingerprint = tuple[tuple[str, int, int, int], ...]


class ApiKeysError(ValueError):
    """The keys cannot be read, or there are none, or one is unusable: with auth on, the service must not start."""


def key_files(path: Path) -> list[Path]:
    """The file itself, or every visible file of the directory (a Secret volume's ..data entries are hidden)."""
    if path.is_dir():
        return sorted(entry for entry in path.iterdir() if not entry.name.startswith(".") and entry.is_file())
    return [path]


def fingerprint(path: Path) -> Fingerprint:
    """What changes when a key file is written or a Secret volume is swapped: names, inodes, sizes, times."""
    found = []
    for file in key_files(path):
        stat = file.stat()  # follows a Secret volume's symlinks to the current data
        found.append((file.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def read_keys(path: Path, setting: str = "api_keys_file") -> list[str]:
    """Every key: one per non-blank line of each file, surrounding white space removed; errors name `setting`."""
    try:
        files = key_files(path)
        keys = [line.strip() for file in files for line in file.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise ApiKeysError(f"{setting} {path}: cannot read the API keys ({reason})") from None
    if not keys:
        raise ApiKeysError(
            f"{setting} {path} holds no API key: write one key per line, or one file per key in a directory"
        )
    short = [number for number, key in enumerate(keys, 1) if len(key) < MIN_KEY_LENGTH or not key.isprintable()]
    if short:
        raise ApiKeysError(
            f"{setting} {path}: key number {', '.join(map(str, short))} is shorter than {MIN_KEY_LENGTH} "
            "characters or not printable; use long random keys (e.g. `openssl rand -hex 32`)"
        )
    return keys


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


class ApiKeys:
    """The keys in force; `accepts` compares a presented key with each of them in constant time."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        try:
            self._stamp = fingerprint(self.path)  # taken before the read: a write in between is seen next time
        except OSError:
            self._stamp = ()  # read_keys says why
        self._digests = [_digest(key) for key in read_keys(self.path)]
        self._checked = clock()
        log.info("API keys required: %d key(s) from %s", len(self._digests), self.path)

    def accepts(self, presented: bytes) -> bool:
        """True when `presented` is one of the keys; every key is compared, whichever matches."""
        self.refresh()
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched

    def refresh(self) -> None:
        """Re-read the keys when their files changed, checking at most every REFRESH_S seconds."""
        now = self._clock()
        if now - self._checked < REFRESH_S:
            return
        self._checked = now
        try:
            stamp = fingerprint(self.path)
            if stamp == self._stamp:
                return
            digests = [_digest(key) for key in read_keys(self.path)]
        except (OSError, ApiKeysError) as exc:  # half-written or removed: keep the keys in force, and say so
            log.error("API keys not reloaded, the %d key(s) in force stay: %s", len(self._digests), exc)
            return
        self._stamp, self._digests = stamp, digests
        log.info("API keys reloaded: %d key(s) from %s", len(digests), self.path)
