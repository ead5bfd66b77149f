"""Train one ensemble member: :func:`train_member` (loop, checkpoints, resume, logging, predictions).

Importing this package is cheap; torch is imported when :func:`train_member` is first used.
Modules: ``member`` (orchestration), ``loop`` (epoch / inference), ``components`` (building from the
registry), ``inputs`` (samples and loaders), ``checkpoint`` (atomic saves), ``runlog`` (metrics.jsonl,
TensorBoard), ``predict`` (probabilities, scores, npz files), ``inference`` (a finished member on any images:
``python -m ensemble_core predict``), ``seeding``, ``schedule``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["train_member"]


def __getattr__(name: str) -> Any:
    if name == "train_member":
        from ensemble_core.train.member import train_member
        return train_member
    raise AttributeError(f"module 'ensemble_core.train' has no attribute {name!r}")
