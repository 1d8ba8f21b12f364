"""Train the CIFAR-10 linear head (2048 -> 10) on frozen ResNet-50 features; save a checkpoint the service loads.

The backbone is built by the service's own code (app.models.network.build_network), and CIFAR's 32x32 images are
preprocessed exactly as the service preprocesses a request (app.imaging.to_pixels: short side to 256, centre-crop
224; then the network's own Normalise), so the head sees at training time the features it will see when serving.

    python scripts/train_cifar_head.py --weights imagenet --data-dir ~/data/cifar10 --output cifar10_head.pt
    python scripts/train_cifar_head.py --fake-data --weights random --output /tmp/head.pt   # offline test

`make train-cifar-head` passes --offline-fallback: where CIFAR-10 or torchvision's weights cannot be downloaded it
trains on FakeData and/or a random backbone instead, says so, and the checkpoint's dataset (shown by /v1/models)
starts with FAKE. It ends by printing the settings that serve the head it wrote.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets

from app.imaging import to_pixels
from app.models.cifar_head import checkpoint, save
from app.models.labels import CIFAR10_LABELS, FEATURE_DIM
from app.models.network import Normalise, build_network
from app.models.weights import WeightsError, WeightsInfo, torchvision_weights
from app.runtimes.base import UnsupportedError
from app.runtimes.choice import resolve_device
from app.settings import Settings, SettingsError

FAKE_DATASET = "FAKE: torchvision FakeData (random pictures, not CIFAR-10; an offline test)"
REAL_DATASET = "CIFAR-10"


@dataclass(frozen=True)
class Features:
    """Cached backbone features (N x 2048, float32, CPU) and their labels (N, int64)."""

    x: torch.Tensor
    y: torch.Tensor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --weights means what the service's `weights` setting means."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="backbone: 'imagenet', a torchvision ResNet50_Weights name, a file, or 'random' (default: imagenet)",
    )
    parser.add_argument("--weights-sha256", default="", help="expected sha256 of the backbone weights file")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-dir", type=Path, help="torchvision CIFAR10 root (downloaded there when online)")
    data.add_argument("--fake-data", action="store_true", help="torchvision FakeData, 10 classes, 32x32 (offline)")
    parser.add_argument(
        "--offline-fallback",
        action="store_true",
        help="when CIFAR-10 or torchvision's backbone weights cannot be downloaded, use FakeData or a random "
        "backbone instead (said loudly; the checkpoint is labelled FAKE) rather than fail",
    )
    parser.add_argument("--train-size", type=int, default=512, help="FakeData training images (default: 512)")
    parser.add_argument("--test-size", type=int, default=128, help="FakeData test images (default: 128)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the cached features (default: 10)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch for extraction and training")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the backbone runs")
    parser.add_argument("--seed", type=int, default=0, help="seed for random weights, head init and shuffling")
    parser.add_argument("--output", type=Path, required=True, help="checkpoint path to write")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    for name in ("train_size", "test_size", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr <= 0:
        parser.error("--lr must be positive")
    return args


def load_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset, str]:
    """(train, test, dataset name); every image goes through the service's to_pixels."""
    if args.fake_data:
        shape = (3, 32, 32)
        classes = len(CIFAR10_LABELS)
        train = datasets.FakeData(args.train_size, shape, classes, transform=to_pixels, random_offset=args.seed)
        test_offset = args.seed + args.train_size + 1_000_003  # a disjoint random stream from the train images
        test = datasets.FakeData(args.test_size, shape, classes, transform=to_pixels, random_offset=test_offset)
        return train, test, FAKE_DATASET
    root = args.data_dir.expanduser()
    try:
        train = datasets.CIFAR10(root, train=True, transform=to_pixels, download=True)
        test = datasets.CIFAR10(root, train=False, transform=to_pixels, download=True)
    except (OSError, RuntimeError) as exc:
        if args.offline_fallback:
            _warn(f"CIFAR-10 is not in {root} and could not be downloaded ({exc.__class__.__name__}): FAKE data it is")
            args.fake_data = True
            return load_datasets(args)
        raise SystemExit(
            f"error: CIFAR-10 is not in {root} and could not be downloaded ({exc.__class__.__name__}: {exc}). "
            "Download it where a network exists, or use --fake-data for an offline test."
        ) from None
    if tuple(train.classes) != CIFAR10_LABELS:
        raise SystemExit(f"error: dataset classes {train.classes} are not {CIFAR10_LABELS}")
    return train, test, REAL_DATASET


def _warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def build_backbone(args: argparse.Namespace) -> tuple[nn.Module, torch.device, WeightsInfo]:
    """The service's normalisation + backbone (fc is Identity: 2048-d features), in eval mode on its device.

    With --offline-fallback, torchvision weights that cannot be had give way to a random backbone (args.weights
    becomes 'random', so the settings printed at the end serve the head on the backbone it was trained on).
    """
    try:
        return _backbone(args)
    except WeightsError as exc:
        if not (args.offline_fallback and torchvision_weights(args.weights) is not None):
            raise
        _warn(f"{exc}\nThe backbone falls back to random weights (seed {args.seed}): the head is a FAKE, for tests")
        args.weights, args.weights_sha256 = "random", ""
        return _backbone(args)


def _backbone(args: argparse.Namespace) -> tuple[nn.Module, torch.device, WeightsInfo]:
    settings = Settings(
        weights=args.weights,
        weights_sha256=args.weights_sha256,
        cifar_head="none",
        device=args.device,
        random_seed=args.seed,
    )
    device = resolve_device(settings.device)
    network, heads = build_network(settings)
    backbone = nn.Sequential(Normalise(), network.backbone).eval().to(device, memory_format=torch.channels_last)
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    return backbone, device, heads["imagenet"].weights


def extract_features(
    backbone: nn.Module, dataset: Dataset, device: torch.device, batch_size: int, name: str
) -> Features:
    """Run the frozen backbone once over a dataset."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    chunks: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    started = time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            chunks.append(backbone(images.to(device, non_blocking=True)).float().cpu())
            labels.append(torch.as_tensor(targets, dtype=torch.int64))
    # Concatenated outside inference mode: plain tensors, usable by autograd while training the head.
    features = Features(torch.cat(chunks), torch.cat(labels))
    if features.x.shape[1] != FEATURE_DIM:
        raise SystemExit(f"error: backbone gives {features.x.shape[1]}-d features, expected {FEATURE_DIM}")
    if not torch.isfinite(features.x).all():
        raise SystemExit("error: the backbone produced non-finite features")
    elapsed = time.perf_counter() - started
    print(f"features {name}: {len(features.y)} images in {elapsed:.1f}s", flush=True)
    return features


def train_head(train: Features, epochs: int, batch_size: int, lr: float, seed: int) -> nn.Linear:
    """Cross-entropy + Adam over the cached features; prints the mean loss of every epoch."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)  # the same init the service gives a 'random' head
        head = nn.Linear(FEATURE_DIM, len(CIFAR10_LABELS))
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    head.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            loss = loss_fn(head(train.x[index]), train.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        print(f"epoch {epoch}/{epochs}: loss {total / len(order):.4f}", flush=True)
    return head.eval()


@torch.no_grad()
def accuracy(head: nn.Linear, test: Features) -> float:
    """Top-1 accuracy of the head on cached features, in [0, 1]."""
    predicted = head(test.x).argmax(dim=1)
    return float((predicted == test.y).float().mean().item())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_set, test_set, dataset = load_datasets(args)  # first: a missing dataset fails before the model loads
    try:
        backbone, device, backbone_info = build_backbone(args)
    except (WeightsError, SettingsError, UnsupportedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"backbone: {backbone_info.source} on {device}", flush=True)
    train = extract_features(backbone, train_set, device, args.batch_size, "train")
    test = extract_features(backbone, test_set, device, args.batch_size, "test")
    head = train_head(train, args.epochs, args.batch_size, args.lr, args.seed)
    test_accuracy = accuracy(head, test)
    print(f"test accuracy: {test_accuracy:.4f} ({dataset}, {len(test.y)} images)", flush=True)
    digest = save(checkpoint(head, backbone_info, test_accuracy, dataset, args.epochs), args.output)
    print(f"saved {args.output}", flush=True)
    print(f"sha256: {digest}", flush=True)
    print(serving_hint(args, digest, fake=dataset == FAKE_DATASET or backbone_info.is_random), flush=True)
    return 0


def serving_hint(args: argparse.Namespace, digest: str, fake: bool) -> str:
    """The exact settings that serve this head, on the backbone it was trained on."""
    settings = {
        "VISIONSERVE_WEIGHTS": args.weights,
        "VISIONSERVE_WEIGHTS_SHA256": args.weights_sha256,
        "VISIONSERVE_CIFAR_HEAD": str(args.output.expanduser().resolve()),
        "VISIONSERVE_CIFAR_HEAD_SHA256": digest,
    }
    line = " ".join(f"{name}={shlex.quote(value)}" for name, value in settings.items() if value)
    note = " (a FAKE head: its labels mean nothing; it shows the path works)" if fake else ""
    return (
        f"serve it{note}:\n  {line} make run\n"
        "in a cluster: docs/cifar-head.md (the chart's cifarHead values mount it from a ConfigMap, Secret or URL)"
    )


if __name__ == "__main__":
    sys.exit(main())
