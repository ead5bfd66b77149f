"""Checkpoints: written atomically (:mod:`ensemble_core.atomic`), so a killed run never leaves a partial
``last.pt`` / ``best.pt``, and read only with ``torch.load(weights_only=True)``, so a file in a run
folder can hold tensors and plain data but never code."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ensemble_core.atomic import atomic_write_stream
from ensemble_core.errors import TrainingError


class _WriteRecorder:
    """A file object for ``torch.save`` that keeps the first OSError of a ``write``: torch reports a failed write
    (a full disk) as ``RuntimeError: [enforce fail at inline_container.cc] . unexpected pos ...``."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through :func:`atomic_write_stream`; a write that fails (a full disk) raises its OSError
    naming ``path`` (the old file is kept), not torch's RuntimeError."""
    def save(out) -> None:
        fh = _WriteRecorder(out)
        try:
            torch.save(state, fh)
        except RuntimeError:
            if fh.error is not None:
                raise fh.error from None
            raise

    atomic_write_stream(path, save)


def safe_torch_load(path: str | Path, what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU: tensors, numbers, strings, lists, dicts, nothing that
    runs code. A file that needs more (a pickled object) raises :class:`TrainingError` naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        why = ("it holds objects beyond tensors and plain data (pickled code is never run)"
               if isinstance(exc, __import__("pickle").UnpicklingError) else f"it is damaged or not a torch file "
               f"({type(exc).__name__})")
        raise TrainingError(f"{what} {str(path)!r} cannot be loaded safely with weights_only=True: {why}") from exc


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; a damaged or foreign file raises TrainingError."""
    try:
        state = safe_torch_load(path, "checkpoint")
    except TrainingError as exc:
        raise TrainingError(f"{exc}. Delete it to retrain this member from scratch.") from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise TrainingError(f"checkpoint {str(path)!r} is not an ensemble_core training checkpoint "
                            f"(no 'model'/'epoch'); delete it to retrain this member from scratch")
    return state
