"""Classification metrics on integer class arrays, fast enough to sit inside a weight search.

``macro_f1`` follows scikit-learn's ``f1_score(average="macro")`` with its
default label set (every class present in the truth or the predictions) and
``zero_division=0``; the test suite checks it against scikit-learn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

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


# ---------------------------------------------------------------- pictures
def confusion_figure(cm: np.ndarray, class_names: Sequence[str], title: str, numbered: bool = False):
    """A row-normalised confusion matrix (colour) with the counts written in; a matplotlib figure.
    ``numbered`` puts each class id before its name."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    n = len(class_names)
    labels = [f"{i} {c}" for i, c in enumerate(class_names)] if numbered else list(class_names)
    size = max(3.0, 0.5 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (row-normalised colour, counts written)")
    ax.set_title(title, fontsize=9)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_confusion(cm, path: str | Path, title: str = "confusion matrix",
                   class_names: Sequence[str] | None = None) -> Path:
    """:func:`confusion_figure` as a PNG, written atomically (class names default to the 18 classes)."""
    import matplotlib.pyplot as plt

    from ensemble_core.atomic import atomic_write

    if class_names is None:
        from ensemble_core.labels import class_names as all_names
        class_names = all_names()
    fig = confusion_figure(np.asarray(cm), class_names, title, numbered=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)
