"""Atomic checkpoints: write ``<name>.tmp`` then ``os.replace``, so a killed run never leaves a partial
``last.pt`` / ``best.pt`` and a partial file is never loaded."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ensemble_core.errors import TrainingError

TMP_SUFFIX = ".tmp"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, writer) -> None:
    """Call ``writer(file_object)`` on a temp file next to ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        writer(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (on CPU); a damaged file raises TrainingError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise TrainingError(f"checkpoint {str(path)!r} cannot be read ({exc!r}); it was not written by a "
                            f"finished save. Delete it to restart this member from scratch.") from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise TrainingError(f"checkpoint {str(path)!r} is not an ensemble_core training checkpoint "
                            f"(no 'model'/'epoch'); delete it to restart this member")
    return state


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete ``*.tmp`` leftovers of a killed save (they are never loaded)."""
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(f"*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
