"""Each cuda worker gets its own GPU; a replacement worker takes the slot its predecessor left."""

from __future__ import annotations

from app.gpu_slots import free_slot, visible_device


def test_workers_take_distinct_slots_and_a_replacement_reuses_the_freed_one() -> None:
    assert free_slot([], 2) == 0
    assert free_slot([0], 2) == 1
    assert free_slot([None, 1], 2) == 0  # worker holding 0 died; its replacement gets GPU 0


def test_visible_device_follows_what_the_pod_was_given() -> None:
    assert visible_device(None, 1) == "1"
    assert visible_device("", 0) == "0"
    assert visible_device("GPU-aa, GPU-bb", 1) == "GPU-bb"
    assert visible_device("3,5", 0) == "3"
