"""From logits to probabilities over the task's original classes, their scores, and the cached
prediction files ``oof.npz`` / ``eval.npz`` that voting reads."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ensemble_core.metrics import accuracy, confusion, f1_per_class, macro_f1_from_confusion
from ensemble_core.labels import AGE_NAMES, GENDER_NAMES, MASK_NAMES, N_CLASSES, Task, class_names
from ensemble_core.atomic import atomic_write_npz


def original_class_names(task: Task) -> list[str]:
    names = getattr(task, "class_names", None)
    if names:
        return list(names)
    n = task.num_original_classes
    by_factor = {"mask": MASK_NAMES, "gender": GENDER_NAMES}
    covers = tuple(task.covers)
    if n == N_CLASSES:
        return class_names()
    if len(covers) == 1 and covers[0] in by_factor and len(by_factor[covers[0]]) == n:
        return list(by_factor[covers[0]])
    if len(covers) == 1 and covers[0].startswith("age") and n == len(AGE_NAMES):
        return list(AGE_NAMES)
    return [str(i) for i in range(n)]


def probs_from_views(task: Task, view_logits: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over views (identity + TTA) of ``task.probs(logits)``, float32 ``(N, num_original_classes)``."""
    probs = np.mean([task.probs(logits) for logits in view_logits], axis=0)
    return probs.astype(np.float32)


def score(probs: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict:
    """Macro F1 over the original classes (as scikit-learn: classes present in truth or predictions;
    ``macro_f1_all`` counts every class), accuracy, per-class F1 and the confusion matrix."""
    n = len(names)
    pred = probs.argmax(axis=1)
    cm = confusion(truth, pred, n)
    per_class = f1_per_class(cm)
    return {"macro_f1": macro_f1_from_confusion(cm), "macro_f1_all": float(per_class.mean()),
            "accuracy": accuracy(truth, pred),
            "per_class_f1": {name: float(v) for name, v in zip(names, per_class)}, "confusion": cm}


def write_predictions(path: Path, image_id, probs: np.ndarray, truth: np.ndarray | None = None) -> None:
    arrays = {"image_id": np.asarray(image_id).astype(str), "probs": np.asarray(probs, dtype=np.float32)}
    if truth is not None:
        arrays["truth"] = np.asarray(truth, dtype=np.int64)
    atomic_write_npz(path, arrays)
