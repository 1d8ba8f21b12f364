"""Where weights come from: torchvision names, local files with sha256, or explicit random init."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torchvision.models import ResNet50_Weights

TORCHVISION_ALIASES = {"imagenet": "IMAGENET1K_V2"}
# An absolute (or ~ or ./) file-system path, POSIX or Windows, not the // of a URL.
_PATH = re.compile(r"(?<![\w:/])(?:[A-Za-z]:)?(?:~|\.{1,2})?[/\\][^\s()\[\]'\",;]*")


class WeightsError(RuntimeError):
    """Weights are missing, corrupt or do not match: the service must not start. `setting` names the culprit."""

    def __init__(self, message: str, setting: str = "weights") -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class WeightsInfo:
    """Where one head's weights came from, in plain words: `source` is answered to clients, so it names a file by
    its name only; `location`, the full path, is for logs and error messages."""

    kind: str  # torchvision | file | random | none
    source: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    location: str | None = None

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    @property
    def described(self) -> str:
        """The source with the file's full path: for the server's own log, never for an answer."""
        return f"{self.source} at {self.location}" if self.location else self.source


def without_paths(text: str) -> str:
    """`text` with every file-system path cut to its file name (older CIFAR-10 checkpoints named them in full)."""
    return _PATH.sub(lambda match: re.split(r"[/\\]", match.group())[-1], text)


NO_HEAD = WeightsInfo("none", "not configured: the cifar10 head is unavailable")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def random_info(seed: int) -> WeightsInfo:
    return WeightsInfo("random", f"random initialisation (seed {seed}): NOT trained, predictions are meaningless")


def verified_file(spec: str, expected_sha256: str, setting: str) -> tuple[Path, str]:
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"{setting}: weights file {path} does not exist. Point {setting} at an existing file, "
            "or use `visionserve fetch-weights` to download one.",
            setting,
        )
    actual = sha256_of(path)
    if expected_sha256:
        check_digest(path, actual, expected_sha256, setting)
    return path, actual


def torch_load(path: Path, setting: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise WeightsError(
            f"{setting}: {path} is not a readable torch checkpoint ({exc.__class__.__name__}: "
            f"{str(exc)[:200]}). Re-download or re-create it.",
            setting,
        ) from None


def torchvision_weights(name: str) -> ResNet50_Weights | None:
    name = TORCHVISION_ALIASES.get(name, name)
    return ResNet50_Weights.__members__.get(name.upper())


def load_backbone_state(spec: str, expected_sha256: str, seed: int) -> tuple[dict | None, WeightsInfo]:
    """Resolve the backbone + ImageNet head weights; None state means random init."""
    if spec == "random":
        return None, random_info(seed)
    tv = torchvision_weights(spec)
    if tv is not None:
        return _load_torchvision(tv, expected_sha256)
    path, digest = verified_file(spec, expected_sha256, "weights")
    state = torch_load(path, "weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise WeightsError(f"weights: {path} does not hold a ResNet-50 state_dict (no 'fc.weight' key)")
    return state, WeightsInfo("file", f"file {path.name}", digest, location=str(path))


def published_prefix(filename: str) -> str:
    """torchvision names its files <name>-<first hex digits of their sha256>.pth."""
    return Path(filename).stem.rsplit("-", 1)[-1]


def check_digest(path: Path, digest: str, expected_sha256: str, setting: str) -> None:
    """A full expected sha256 when configured; else the prefix torchvision publishes in the file name."""
    if expected_sha256:
        if digest != expected_sha256.strip().lower():
            raise WeightsError(
                f"{setting}: sha256 mismatch for {path}: expected {expected_sha256.strip().lower()}, found {digest}. "
                f"The file is corrupt or not the one configured; fetch it again or correct {setting}_sha256.",
                setting,
            )
    elif not digest.startswith(published_prefix(path.name)):
        raise WeightsError(
            f"{setting}: {path} has sha256 {digest}, which does not start with {published_prefix(path.name)} as "
            "torchvision publishes: the file is corrupt or not torchvision's. Delete it and run "
            f"`visionserve fetch-weights`, or set {setting}_sha256 to vouch for this file.",
            setting,
        )


def _load_torchvision(weights: ResNet50_Weights, expected_sha256: str) -> tuple[dict, WeightsInfo]:
    """From the torch cache (downloaded into it when a network exists), verified either way."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(weights.url, str(cached), progress=False)
        except Exception as exc:
            raise WeightsError(
                f"weights: torchvision {weights.name} is not in the torch cache ({cached}) and could not be "
                f"downloaded from {weights.url} ({exc.__class__.__name__}: {str(exc)[:200]}). Run "
                "`visionserve fetch-weights` where a network exists, mount the cache, or set weights to a local file."
            ) from None
    digest = sha256_of(cached)
    check_digest(cached, digest, expected_sha256, "weights")
    state = torch_load(cached, "weights")
    return state, WeightsInfo(
        "torchvision", f"torchvision ResNet50_Weights.{weights.name}", digest, location=str(cached)
    )
