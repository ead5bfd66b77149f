"""Classification metrics on integer class arrays, fast enough to sit inside a weight search.

``macro_f1`` follows scikit-learn's ``f1_score(average="macro")`` with its
default label set (every class present in the truth or the predictions) and
``zero_division=0``; the test suite checks it against scikit-learn.
"""
from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; rows are true classes, columns predicted classes."""
    truth = np.asarray(truth, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth has shape {truth.shape} but predictions have {pred.shape}")
    return np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix (0 where a class is neither true nor predicted)."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # 2tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    if not present.any():
        return 0.0
    return float(f1_per_class(cm)[present].mean())


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int | None = None) -> float:
    truth = np.asarray(truth, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if truth.size == 0:
        return 0.0
    if n_classes is None:
        n_classes = int(max(truth.max(), pred.max())) + 1
    return macro_f1_from_confusion(confusion(truth, pred, n_classes))


def accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    truth = np.asarray(truth)
    if truth.size == 0:
        return 0.0
    return float((truth == np.asarray(pred)).mean())
