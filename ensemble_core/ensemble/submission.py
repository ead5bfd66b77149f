"""Write files so that a reader never sees half of one: temp file in the same folder, then ``os.replace``."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ensemble_core.labels import N_CLASSES

SUBMISSION_COLUMNS = ("ImageID", "ans")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the result onto ``path`` in one step (removing the temp on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_submission(path: str | Path, image_ids: np.ndarray, classes: np.ndarray) -> Path:
    """``ImageID,ans`` in the given image order (the order of eval/info.csv)."""
    classes = np.asarray(classes)
    if len(classes) != len(image_ids):
        raise ValueError(f"{len(image_ids)} image ids but {len(classes)} predicted classes")
    if len(classes) and (classes.min() < 0 or classes.max() >= N_CLASSES):
        raise ValueError(f"predicted classes must be in 0..{N_CLASSES - 1}, got {classes.min()}..{classes.max()}")
    frame = pd.DataFrame({SUBMISSION_COLUMNS[0]: np.asarray(image_ids, dtype=str),
                          SUBMISSION_COLUMNS[1]: classes.astype(np.int64)})
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
