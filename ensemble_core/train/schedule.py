"""What a scheduler factory returns: a torch LR scheduler plus when to step it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INTERVALS = ("epoch", "step")


@dataclass
class ScheduledLR:
    """``scheduler.step()`` is called after every optimizer step (``"step"``) or every epoch (``"epoch"``,
    after validation). A scheduler with a true ``wants_metric`` attribute gets ``step(val_macro_f1)`` at
    the end of each epoch instead (metric-driven schedules such as ``timm_plateau``)."""

    scheduler: Any
    interval: str = "epoch"

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"ScheduledLR.interval must be one of {INTERVALS}, got {self.interval!r}")
