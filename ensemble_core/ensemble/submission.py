"""``submission.csv``: ``ImageID,ans`` in the order of eval/info.csv, written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ensemble_core.atomic import atomic_write
from ensemble_core.labels import N_CLASSES

SUBMISSION_COLUMNS = ("ImageID", "ans")


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
