"""One GPU per worker: with device cuda and N workers, each worker sees only its own GPU."""

from __future__ import annotations

from collections.abc import Iterable


def free_slot(taken: Iterable[int | None], workers: int) -> int:
    """The lowest GPU slot no live worker holds (a replaced worker gets its predecessor's)."""
    held = set(taken)
    return next(slot for slot in range(workers) if slot not in held)


def visible_device(inherited: str | None, slot: int) -> str:
    """CUDA_VISIBLE_DEVICES for a worker: the slot-th of the devices the pod was given."""
    devices = [d.strip() for d in (inherited or "").split(",") if d.strip()]
    return devices[slot % len(devices)] if devices else str(slot)
