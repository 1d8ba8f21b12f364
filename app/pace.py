"""How fast the runtime goes, measured from the batches it ran: seconds per image, and what follows from it."""

from __future__ import annotations

import math

SMOOTHING = 0.2  # weight of the newest batch in the moving average


class Pace:
    """An exponentially weighted average of seconds per image; None until something was measured."""

    def __init__(self, seconds_per_item: float | None = None) -> None:
        self.seconds_per_item = seconds_per_item

    def observe(self, seconds: float, items: int) -> None:
        if items <= 0 or seconds <= 0:
            return
        latest = seconds / items
        previous = self.seconds_per_item
        self.seconds_per_item = latest if previous is None else previous + SMOOTHING * (latest - previous)

    def seconds_for(self, items: int) -> float:
        """Expected run time of `items` images (0 while unmeasured)."""
        return items * (self.seconds_per_item or 0.0)

    def items_within(self, seconds: float, ceiling: int) -> int:
        """How many images run within `seconds` (at least 1, at most `ceiling`); `ceiling` when unmeasured or 0 s."""
        if seconds <= 0 or not self.seconds_per_item:
            return ceiling
        return max(1, min(ceiling, math.floor(seconds / self.seconds_per_item)))
