"""``submission.csv``: one row per eval image, in the data set's order, written atomically.

The mask competition's format is ``ImageID,ans`` with the class id; a data layout may ask for other columns
(``submission_columns``: the id column, then ``label`` for the final class and / or factor names) and for
class names instead of ids (``submission_value: name``), e.g. ``image,label`` of an ImageFolder data set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ensemble_core.atomic import atomic_write, atomic_write_npz
from ensemble_core.labels import N_CLASSES

SUBMISSION_COLUMNS = ("ImageID", "ans")


def write_submission(path: str | Path, image_ids: np.ndarray, classes: np.ndarray, label_space=None,
                     columns: Sequence[str] = SUBMISSION_COLUMNS, value: str = "id") -> Path:
    """``ImageID,ans`` in the given image order (the order of eval/info.csv); with a ``label_space``, the
    ``columns`` (id column, then ``label`` and / or factor names) holding class ids or names (``value``)."""
    classes = np.asarray(classes)
    n_classes = N_CLASSES if label_space is None else label_space.n_classes
    if len(classes) != len(image_ids):
        raise ValueError(f"{len(image_ids)} image ids but {len(classes)} predicted classes")
    if len(classes) and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"predicted classes must be in 0..{n_classes - 1}, got {classes.min()}..{classes.max()}")
    if label_space is None:
        frame = pd.DataFrame({SUBMISSION_COLUMNS[0]: np.asarray(image_ids, dtype=str),
                              SUBMISSION_COLUMNS[1]: classes.astype(np.int64)})
    else:
        data = {columns[0]: np.asarray(image_ids, dtype=str)}
        codes = label_space.decode(classes.astype(np.int64))
        names = np.asarray(label_space.class_names(), dtype=object)
        for col in columns[1:]:
            if col == "label" or col not in codes:
                data[col] = names[classes] if value == "name" else classes.astype(np.int64)
            else:
                f = label_space.factor(col)
                data[col] = np.asarray(f.classes, dtype=object)[codes[col]] if value == "name" else codes[col]
        frame = pd.DataFrame(data)
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_layout_submission(path: str | Path, image_ids: np.ndarray, classes: np.ndarray, layout,
                            label_space=None) -> Path:
    """``submission.csv`` in the format of data ``layout`` (its ``submission_columns`` / ``submission_value``):
    the mask competition's ``ImageID,ans`` as always, any other through ``label_space``."""
    mask = label_space is None or label_space.name == "mask_status"
    if mask and tuple(layout.submission_columns) == SUBMISSION_COLUMNS and layout.submission_value == "id":
        return write_submission(path, image_ids, classes)
    return write_submission(path, image_ids, classes, label_space=label_space, columns=layout.submission_columns,
                            value=layout.submission_value)


def write_class_probs(path: str | Path, image_ids: np.ndarray, probs: np.ndarray,
                      class_names: Sequence[str] | None = None) -> Path:
    """The ensemble's final-class probabilities, pickle-free: ``image_id`` (str), ``probs`` float32 ``(N, C)``
    and, when given, ``class_names`` (str, in class-id order)."""
    arrays = {"image_id": np.asarray(image_ids, dtype=str), "probs": np.asarray(probs).astype(np.float32)}
    if class_names is not None:
        arrays["class_names"] = np.asarray(list(class_names), dtype=str)
    return atomic_write_npz(path, arrays)
