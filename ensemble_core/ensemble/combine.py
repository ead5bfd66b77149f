"""Combine per-task probabilities into the final classes (the 18 classes of the mask competition, or the
classes of the run's label space).

Each task says how its probabilities factor onto the 18 classes
(:meth:`ensemble_core.labels.Task.log18`); a set of tasks that covers mask,
gender and age exactly once (``labels.check_coverage``) multiplies into one
distribution over the 18 classes:

- seed structure: ``P(mask) * P(gender) * P(age | gender)`` from the mask,
  gender, age_male and age_female tasks (the age model of each gender fills
  that gender's cells);
- multihead: the product of its three heads;
- all18: its own 18 probabilities.

Images for which any task has no prediction (NaN row) come out NaN.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.labels import N_CLASSES, Task, check_coverage


class CoverageError(EnsembleCoreError):
    """The tasks of an ensemble do not predict mask, gender and age exactly once."""


def _is_mask(label_space) -> bool:
    return label_space is None or label_space.name == "mask_status"


def coverage_problems(tasks: Mapping[str, Task], label_space=None) -> list[str]:
    """Problems with ``tasks`` covering the factors of ``label_space`` (None: the mask competition's 18
    classes) exactly once."""
    covers = {name: tuple(task.covers) for name, task in tasks.items()}
    return check_coverage(covers) if _is_mask(label_space) else label_space.check_coverage(covers)


def require_coverage(tasks: Mapping[str, Task], where: str = "recipe tasks", label_space=None) -> None:
    problems = coverage_problems(tasks, label_space)
    if problems:
        into = ("the 18 classes" if _is_mask(label_space) else
                f"the {label_space.n_classes} classes of label space {label_space.name!r}")
        raise CoverageError(f"{where} ({', '.join(tasks) or 'none'}) cannot be combined into {into}: "
                            + "; ".join(problems))


def combine(parts: Mapping[str, tuple[Task, np.ndarray]], label_space=None) -> np.ndarray:
    """``{task name: (task, probs (N, C_task))}`` -> ``(N, n_classes)`` probabilities over the final classes of
    ``label_space`` (None: the 18 mask classes); rows sum to 1, or NaN."""
    n_classes = N_CLASSES if label_space is None else label_space.n_classes
    require_coverage({name: task for name, (task, _) in parts.items()}, label_space=label_space)
    total: np.ndarray | None = None
    missing: np.ndarray | None = None
    for name, (task, probs) in parts.items():
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != task.num_original_classes:
            raise ValueError(f"task {name!r}: probabilities must have shape (N, {task.num_original_classes}), "
                             f"got {probs.shape}")
        if total is not None and probs.shape[0] != total.shape[0]:
            raise ValueError(f"task {name!r} has {probs.shape[0]} rows but the tasks before it have "
                             f"{total.shape[0]}; align every task on the same image ids first")
        nan_rows = np.isnan(probs).any(axis=1)
        term = task.log18(np.where(nan_rows[:, None], 1.0 / probs.shape[1], probs))
        if term.shape != (probs.shape[0], n_classes):
            raise ValueError(f"task {name!r}: log18 returned shape {term.shape}, expected ({probs.shape[0]}, "
                             f"{n_classes})")
        total = term if total is None else total + term
        missing = nan_rows if missing is None else missing | nan_rows
    assert total is not None and missing is not None  # require_coverage rejects an empty mapping
    total = total - total.max(axis=1, keepdims=True)
    out = np.exp(total)
    out /= out.sum(axis=1, keepdims=True)
    out[missing] = np.nan
    return out
