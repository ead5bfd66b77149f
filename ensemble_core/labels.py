"""The factorized label space and the contracts of tasks and label transforms.

18 classes = mask(3) x gender(2) x age(3); ``class = mask*6 + gender*3 + age``
with mask 0=mask 1=incorrect 2=normal, gender 0=male 1=female,
age 0=<30 1=30-59 2=60+.

Samples are rows of a pandas DataFrame with at least the columns
``image_id`` (unique, relative path), ``path`` (absolute), ``person``,
``mask`` (0..2), ``gender`` (0..1), ``age`` (years; 60 means 60+). Eval rows
have ``image_id`` and ``path`` only.

A *task* picks its rows, turns them into training targets (through an
optional *label transform*), maps model outputs back to probabilities over its
**original** classes (metrics always use original labels), and says how those
probabilities factor into the 18 classes (:meth:`Task.log18`). The combiner
adds the ``log18`` of a set of tasks that together cover mask, gender and age
exactly once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MASK_NAMES = ("mask", "incorrect", "normal")
GENDER_NAMES = ("male", "female")
AGE_NAMES = ("<30", "30-59", "60+")
N_MASK, N_GENDER, N_AGE = 3, 2, 3
N_CLASSES = N_MASK * N_GENDER * N_AGE

# factor names a task can cover
FACTORS = ("mask", "gender", "age|male", "age|female")


def class_id(mask, gender, age_class):
    return np.asarray(mask) * 6 + np.asarray(gender) * 3 + np.asarray(age_class)


def decode_class(cls):
    cls = np.asarray(cls)
    return cls // 6, (cls // 3) % 2, cls % 3


def age_to_class(age, young: int = 30, old: int = 60):
    """Years -> 0 (<young), 1 (young..old-1), 2 (>=old)."""
    age = np.asarray(age)
    return np.where(age < young, 0, np.where(age < old, 1, 2)).astype(np.int64)


def class_names() -> list[str]:
    return [f"{m}/{g}/{a}" for m in MASK_NAMES for g in GENDER_NAMES for a in AGE_NAMES]


# grids over the 18 classes, used to broadcast factor probabilities
_GRID_MASK, _GRID_GENDER, _GRID_AGE = decode_class(np.arange(N_CLASSES))


def _safe_log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, 1.0))


class LabelTransform:
    """Encodes age targets for training; maps predictions back to the 3 original age classes.

    Subclasses set ``num_classes`` and implement :meth:`encode` and
    :meth:`to_age3`. The identity transform is :class:`AgeClasses`.
    """

    num_classes: int = N_AGE

    def encode(self, age: np.ndarray, gender: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_age3(self, probs: np.ndarray) -> np.ndarray:
        """(N, num_classes) -> (N, 3) probabilities over the original age classes."""
        raise NotImplementedError


class AgeClasses(LabelTransform):
    """The original <30 / 30-59 / 60+ classes."""

    num_classes = N_AGE

    def encode(self, age, gender):
        return age_to_class(age)

    def to_age3(self, probs):
        return np.asarray(probs)


@dataclass(frozen=True)
class Head:
    name: str            # "mask", "gender", "age", or "all18"
    num_classes: int     # width of this head's logits (after label transform)


class Task:
    """One thing a member learns. Subclasses define heads, rows, targets and log18.

    Single-head tasks train with integer targets ``(N,)``; multi-head tasks
    with ``(N, n_heads)`` and one loss per head.
    """

    name: str = "task"
    covers: tuple[str, ...] = ()
    uses_age: bool = False

    def __init__(self, label_transform: LabelTransform | None = None):
        self.label_transform = label_transform or AgeClasses()

    # -- shape ---------------------------------------------------------------
    @property
    def heads(self) -> list[Head]:
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        return sum(h.num_classes for h in self.heads)

    @property
    def num_original_classes(self) -> int:
        """Classes of :meth:`probs` (the original label space of this task)."""
        raise NotImplementedError

    # -- data ----------------------------------------------------------------
    def rows(self, samples) -> np.ndarray:
        """Boolean mask over labelled samples this task trains and validates on."""
        return np.ones(len(samples), dtype=bool)

    def targets(self, samples) -> np.ndarray:
        """Training targets for ``samples`` (already filtered with :meth:`rows`)."""
        raise NotImplementedError

    def truth(self, samples) -> np.ndarray:
        """Original-label classes of ``samples`` for metrics, in [0, num_original_classes)."""
        raise NotImplementedError

    # -- predictions ---------------------------------------------------------
    def head_slices(self) -> list[slice]:
        out, start = [], 0
        for h in self.heads:
            out.append(slice(start, start + h.num_classes))
            start += h.num_classes
        return out

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """Model logits (N, num_outputs) -> probabilities over original classes (N, num_original_classes)."""
        raise NotImplementedError

    def log18(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities from :meth:`probs` -> (N, 18) log factor over the 18 classes."""
        raise NotImplementedError


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def factor_log18(factor: str, probs: np.ndarray) -> np.ndarray:
    """Broadcast one factor's probabilities onto the 18 classes as a log term."""
    probs = np.asarray(probs, dtype=np.float64)
    if factor == "mask":
        return _safe_log(probs[:, _GRID_MASK])
    if factor == "gender":
        return _safe_log(probs[:, _GRID_GENDER])
    if factor in ("age|male", "age|female"):
        g = 0 if factor == "age|male" else 1
        out = _safe_log(probs[:, _GRID_AGE])
        out[:, _GRID_GENDER != g] = 0.0
        return out
    if factor == "age":
        return _safe_log(probs[:, _GRID_AGE])
    raise ValueError(f"unknown factor {factor!r}")


def check_coverage(task_covers: dict[str, Sequence[str]]) -> list[str]:
    """Problems with a set of tasks that should cover mask, gender and age exactly once."""
    seen: dict[str, str] = {}
    problems = []
    for task, covers in task_covers.items():
        for f in covers:
            expanded = ("age|male", "age|female") if f == "age" else (f,)
            for e in expanded:
                if e in seen:
                    problems.append(f"tasks {seen[e]!r} and {task!r} both predict {e}")
                seen[e] = task
    missing = [f for f in FACTORS if f not in seen]
    if missing:
        problems.append(f"no task predicts {', '.join(missing)}; add e.g. "
                        + ", ".join({"mask": "mask", "gender": "gender", "age|male": "age_male (or age)",
                                     "age|female": "age_female (or age)"}[m] for m in missing)
                        + ", or use all18 / multihead")
    return problems
