"""Concrete tasks and label transforms (engine code; ``ensemble_core_plugins.tasks`` and
``ensemble_core_plugins.label_transforms`` register them).

Tasks follow the contract of :class:`ensemble_core.labels.Task`: ``rows`` picks
the samples, ``targets`` are what the model trains on (after the label
transform), ``truth`` and ``probs`` are over the task's *original* classes, and
``log18`` spreads those probabilities over the 18 classes.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ensemble_core.registry import normalize_ref
from ensemble_core.labels import (N_AGE, N_CLASSES, N_GENDER, N_MASK, AgeClasses, Head, LabelTransform, Task,
                                  age_to_class, class_id, factor_log18, softmax)


def _col(samples, name: str) -> np.ndarray:
    try:
        return np.asarray(samples[name]).astype(np.int64)
    except KeyError:
        raise KeyError(f"samples have no column {name!r}; a labelled sample table has image_id, path, person, "
                       f"mask, gender, age (see ensemble_core.data.layout)") from None


def _check_logits(logits: np.ndarray, width: int, task: str) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != width:
        raise ValueError(f"task {task!r} expects logits of shape (N, {width}), got {logits.shape}")
    return logits


# ---------------------------------------------------------------- label transforms
class AgeThreshold(LabelTransform):
    """Three age classes with a per-gender threshold for 60+: ages >= threshold train as 60+.

    ``AgeThreshold(male=58, female=57)`` is the seed's trick. Predictions are
    already over the 3 original classes, so :meth:`to_age3` is the identity.
    """

    num_classes = N_AGE

    def __init__(self, male: int = 60, female: int = 60, young: int = 30):
        for name, v in (("male", male), ("female", female)):
            if not isinstance(v, (int, np.integer)) or not young < v <= 120:
                raise ValueError(f"age_threshold: {name}={v!r} must be a whole number of years in {young + 1}..120")
        self.male, self.female, self.young = int(male), int(female), int(young)

    def encode(self, age, gender):
        age, gender = np.asarray(age), np.asarray(gender)
        old = np.where(gender == 0, self.male, self.female)
        return np.where(age < self.young, 0, np.where(age < old, 1, 2)).astype(np.int64)

    def to_age3(self, probs):
        return np.asarray(probs, dtype=np.float64)

    def __repr__(self) -> str:
        return f"AgeThreshold(male={self.male}, female={self.female})"


class AgeBins(LabelTransform):
    """Age in bins ``<= edges[0]``, ``<= edges[1]``, ..., rest; merged back to 3 classes by summing.

    Default: 5 bins (<=20, <=29, <=45, <=57, 58+) merged as bins 0,1 -> <30,
    2,3 -> 30-59, 4 -> 60+ (so 58 and 59 train in the oldest bin).
    """

    def __init__(self, edges: Sequence[int] = (20, 29, 45, 57), merge: Sequence[int] = (0, 0, 1, 1, 2)):
        edges, merge = [int(e) for e in edges], [int(m) for m in merge]
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"age_bins: edges {edges} must increase")
        if len(merge) != len(edges) + 1:
            raise ValueError(f"age_bins: merge needs one age class per bin ({len(edges) + 1}), got {merge}")
        if any(m not in (0, 1, 2) for m in merge) or sorted(merge) != merge or set(merge) != {0, 1, 2}:
            raise ValueError(f"age_bins: merge {merge} must map bins in order onto every age class 0, 1, 2")
        self.edges, self.merge = edges, merge
        self.num_classes = len(merge)
        self._merge_matrix = np.zeros((self.num_classes, N_AGE))
        self._merge_matrix[np.arange(self.num_classes), merge] = 1.0

    def encode(self, age, gender):
        return np.searchsorted(np.asarray(self.edges), np.asarray(age), side="left").astype(np.int64)

    def to_age3(self, probs):
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape[-1] != self.num_classes:
            raise ValueError(f"age_bins: expected {self.num_classes} columns, got {probs.shape}")
        return probs @ self._merge_matrix

    def __repr__(self) -> str:
        return f"AgeBins(edges={self.edges}, merge={self.merge})"


# ---------------------------------------------------------------- single-factor tasks
class SingleHeadTask(Task):
    """A task with one head over one factor."""

    factor: str = ""
    head_name: str = ""

    @property
    def heads(self) -> list[Head]:
        return [Head(self.head_name, self._width())]

    def _width(self) -> int:
        return self.num_original_classes

    def probs(self, logits):
        return softmax(_check_logits(logits, self.num_outputs, self.name))

    def log18(self, probs):
        return factor_log18(self.factor, probs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label_transform={self.label_transform!r})"


class MaskTask(SingleHeadTask):
    name, covers, factor, head_name = "mask", ("mask",), "mask", "mask"

    @property
    def num_original_classes(self) -> int:
        return N_MASK

    def targets(self, samples):
        return _col(samples, "mask")

    def truth(self, samples):
        return _col(samples, "mask")


class GenderTask(SingleHeadTask):
    name, covers, factor, head_name = "gender", ("gender",), "gender", "gender"

    @property
    def num_original_classes(self) -> int:
        return N_GENDER

    def targets(self, samples):
        return _col(samples, "gender")

    def truth(self, samples):
        return _col(samples, "gender")


class AgeTask(SingleHeadTask):
    """Age of everyone (``gender=None``) or of one gender (0 male, 1 female)."""

    uses_age = True
    head_name = "age"

    def __init__(self, label_transform: LabelTransform | None = None, gender: int | None = None):
        super().__init__(label_transform)
        if gender not in (None, 0, 1):
            raise ValueError(f"AgeTask gender must be None, 0 (male) or 1 (female), got {gender!r}")
        self.gender = gender
        self.name = {None: "age", 0: "age_male", 1: "age_female"}[gender]
        self.factor = {None: "age", 0: "age|male", 1: "age|female"}[gender]
        self.covers = (self.factor,)

    @property
    def num_original_classes(self) -> int:
        return N_AGE

    def _width(self) -> int:
        return self.label_transform.num_classes

    def rows(self, samples):
        if self.gender is None:
            return np.ones(len(samples), dtype=bool)
        return _col(samples, "gender") == self.gender

    def targets(self, samples):
        return np.asarray(self.label_transform.encode(_col(samples, "age"), _col(samples, "gender")), np.int64)

    def truth(self, samples):
        return age_to_class(_col(samples, "age"))

    def probs(self, logits):
        return self.label_transform.to_age3(softmax(_check_logits(logits, self.num_outputs, self.name)))


# ---------------------------------------------------------------- joint tasks
class All18Task(Task):
    """One head over mask x gender x age. With a K-class label transform the head has 3*2*K outputs
    (``mask*2K + gender*K + age_bin``); :meth:`probs` merges the age bins back to the 18 classes."""

    name = "all18"
    covers = ("mask", "gender", "age")
    uses_age = True

    @property
    def heads(self) -> list[Head]:
        return [Head("all18", N_MASK * N_GENDER * self.label_transform.num_classes)]

    @property
    def num_original_classes(self) -> int:
        return N_CLASSES

    def targets(self, samples):
        k = self.label_transform.num_classes
        age = self.label_transform.encode(_col(samples, "age"), _col(samples, "gender"))
        return (_col(samples, "mask") * 2 * k + _col(samples, "gender") * k + np.asarray(age)).astype(np.int64)

    def truth(self, samples):
        return class_id(_col(samples, "mask"), _col(samples, "gender"), age_to_class(_col(samples, "age")))

    def probs(self, logits):
        k = self.label_transform.num_classes
        p = softmax(_check_logits(logits, self.num_outputs, self.name))
        p = p.reshape(len(p), N_MASK, N_GENDER, k)
        return self.label_transform.to_age3(p).reshape(len(p), N_CLASSES)

    def log18(self, probs):
        return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))

    def __repr__(self) -> str:
        return f"All18Task(label_transform={self.label_transform!r})"


class MultiHeadTask(Task):
    """Heads mask (3) + gender (2) + age (label transform's classes), one loss per head.

    Targets are ``(N, 3)``: mask, gender, encoded age. :meth:`probs` is the joint
    distribution over the 18 original classes (product of the three heads, age
    merged back to 3 classes), so it votes and scores like ``all18``;
    :meth:`head_probs` gives the per-head probabilities. ``head_losses`` maps a
    head name to a loss reference (``"cross_entropy"`` or ``{name:, params:}``);
    heads without one use the member's loss.
    """

    name = "multihead"
    covers = ("mask", "gender", "age")
    uses_age = True
    HEAD_NAMES = ("mask", "gender", "age")

    def __init__(self, label_transform: LabelTransform | None = None,
                 head_losses: Mapping[str, object] | None = None):
        super().__init__(label_transform)
        head_losses = dict(head_losses or {})
        unknown = [k for k in head_losses if k not in self.HEAD_NAMES]
        if unknown:
            raise ValueError(f"multihead: head_losses has unknown head(s) {unknown}; heads are "
                             f"{', '.join(self.HEAD_NAMES)}")
        self.head_losses = head_losses

    @property
    def heads(self) -> list[Head]:
        return [Head("mask", N_MASK), Head("gender", N_GENDER), Head("age", self.label_transform.num_classes)]

    @property
    def num_original_classes(self) -> int:
        return N_CLASSES

    def targets(self, samples):
        age = self.label_transform.encode(_col(samples, "age"), _col(samples, "gender"))
        return np.stack([_col(samples, "mask"), _col(samples, "gender"), np.asarray(age, np.int64)], axis=1)

    def truth(self, samples):
        return class_id(_col(samples, "mask"), _col(samples, "gender"), age_to_class(_col(samples, "age")))

    def head_probs(self, logits) -> dict[str, np.ndarray]:
        """Per-head probabilities over original classes: mask (N,3), gender (N,2), age (N,3)."""
        logits = _check_logits(logits, self.num_outputs, self.name)
        sm, sg, sa = self.head_slices()
        return {"mask": softmax(logits[:, sm]), "gender": softmax(logits[:, sg]),
                "age": self.label_transform.to_age3(softmax(logits[:, sa]))}

    def probs(self, logits):
        hp = self.head_probs(logits)
        joint = hp["mask"][:, :, None, None] * hp["gender"][:, None, :, None] * hp["age"][:, None, None, :]
        return joint.reshape(len(joint), N_CLASSES)

    def log18(self, probs):
        return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))

    def __repr__(self) -> str:
        return f"MultiHeadTask(label_transform={self.label_transform!r}, head_losses={self.head_losses!r})"


# ---------------------------------------------------------------- factories (what plugins register)
def mask_task(label_transform: LabelTransform | None = None) -> Task:
    return MaskTask(label_transform)


def gender_task(label_transform: LabelTransform | None = None) -> Task:
    return GenderTask(label_transform)


def age_task(label_transform: LabelTransform | None = None) -> Task:
    return AgeTask(label_transform)


def age_male_task(label_transform: LabelTransform | None = None) -> Task:
    return AgeTask(label_transform, gender=0)


def age_female_task(label_transform: LabelTransform | None = None) -> Task:
    return AgeTask(label_transform, gender=1)


def all18_task(label_transform: LabelTransform | None = None) -> Task:
    return All18Task(label_transform)


def multihead_task(label_transform: LabelTransform | None = None,
                   head_losses: Mapping[str, object] | None = None) -> Task:
    return MultiHeadTask(label_transform, head_losses=head_losses)


def age_threshold(male: int = 60, female: int = 60) -> LabelTransform:
    return AgeThreshold(male=male, female=female)


def age_bins5(edges: Sequence[int] = (20, 29, 45, 57), merge: Sequence[int] = (0, 0, 1, 1, 2)) -> LabelTransform:
    return AgeBins(edges=edges, merge=merge)


def age3() -> LabelTransform:
    return AgeClasses()


def build_task(registry, task: Any, label_transform: Any = None) -> Task:
    """The one builder of a :class:`Task` from recipe references: ``task`` (a name or ``{name, params}``) and,
    when given, the ``label_transform`` the member trains with. The ensemble builds tasks without a label
    transform: predictions are over each task's original classes (``Task.probs``)."""
    ref = normalize_ref(task)
    params = dict(ref["params"])
    if label_transform is not None:
        params["label_transform"] = registry.build("label_transform", label_transform, field="label_transform")
    return registry.build("task", {"name": ref["name"], "params": params}, field="task")
