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

    ``aux_age`` (a label transform, e.g. ``age_bins``' 14 three-year bins) adds a
    fourth head, ``age_aux``, trained on the same ages in those bins (its loss:
    ``head_losses.age_aux``, e.g. an ordinal cross-entropy) and never used for
    predictions: finer age supervision for the shared features while the 18-class
    probabilities still come from the three heads above.
    """

    name = "multihead"
    covers = ("mask", "gender", "age")
    uses_age = True
    HEAD_NAMES = ("mask", "gender", "age")
    AUX_HEAD = "age_aux"

    def __init__(self, label_transform: LabelTransform | None = None,
                 head_losses: Mapping[str, object] | None = None, aux_age: LabelTransform | None = None):
        super().__init__(label_transform)
        if aux_age is not None and not (callable(getattr(aux_age, "encode", None))
                                        and isinstance(getattr(aux_age, "num_classes", None), int)):
            raise ValueError(f"multihead: aux_age must be a label transform (encode, num_classes; e.g. age_bins), "
                             f"got {aux_age!r}")
        self.aux_age = aux_age
        names = self.HEAD_NAMES + ((self.AUX_HEAD,) if aux_age is not None else ())
        head_losses = dict(head_losses or {})
        unknown = [k for k in head_losses if k not in names]
        if unknown:
            hint = (f" (head {self.AUX_HEAD!r} exists only with aux_age set)" if self.AUX_HEAD in unknown else "")
            raise ValueError(f"multihead: head_losses has unknown head(s) {unknown}; heads are "
                             f"{', '.join(names)}{hint}")
        self.head_losses = head_losses

    @property
    def heads(self) -> list[Head]:
        out = [Head("mask", N_MASK), Head("gender", N_GENDER), Head("age", self.label_transform.num_classes)]
        if self.aux_age is not None:
            out.append(Head(self.AUX_HEAD, self.aux_age.num_classes))
        return out

    @property
    def num_original_classes(self) -> int:
        return N_CLASSES

    def targets(self, samples):
        age, gender = _col(samples, "age"), _col(samples, "gender")
        cols = [_col(samples, "mask"), gender, np.asarray(self.label_transform.encode(age, gender), np.int64)]
        if self.aux_age is not None:
            cols.append(np.asarray(self.aux_age.encode(age, gender), np.int64))
        return np.stack(cols, axis=1)

    def truth(self, samples):
        return class_id(_col(samples, "mask"), _col(samples, "gender"), age_to_class(_col(samples, "age")))

    def head_probs(self, logits) -> dict[str, np.ndarray]:
        """Per-head probabilities over original classes: mask (N,3), gender (N,2), age (N,3)."""
        logits = _check_logits(logits, self.num_outputs, self.name)
        sm, sg, sa = self.head_slices()[:3]     # an aux_age head only shapes the features
        return {"mask": softmax(logits[:, sm]), "gender": softmax(logits[:, sg]),
                "age": self.label_transform.to_age3(softmax(logits[:, sa]))}

    def probs(self, logits):
        hp = self.head_probs(logits)
        joint = hp["mask"][:, :, None, None] * hp["gender"][:, None, :, None] * hp["age"][:, None, None, :]
        return joint.reshape(len(joint), N_CLASSES)

    def log18(self, probs):
        return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))

    def __repr__(self) -> str:
        return (f"MultiHeadTask(label_transform={self.label_transform!r}, head_losses={self.head_losses!r}"
                + (f", aux_age={self.aux_age!r})" if self.aux_age is not None else ")"))


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
                   head_losses: Mapping[str, object] | None = None, aux_age: Any = None, registry=None) -> Task:
    """``aux_age``: a label transform reference (``age_bins``, ``{name: age_bins, params: {edges: ...}}``) for
    an auxiliary age head; ``registry`` is injected by ``Registry.build``."""
    if isinstance(aux_age, (str, Mapping)):      # a reference; a built transform is used as it is
        if registry is None:
            raise TypeError("multihead builds aux_age from a registry: build it with registry.build('task', ...)")
        aux_age = registry.build("label_transform", aux_age, field="task.params.aux_age")
    return MultiHeadTask(label_transform, head_losses=head_losses, aux_age=aux_age)


def age_threshold(male: int = 60, female: int = 60) -> LabelTransform:
    return AgeThreshold(male=male, female=female)


def age_bins5(edges: Sequence[int] = (20, 29, 45, 57), merge: Sequence[int] = (0, 0, 1, 1, 2)) -> LabelTransform:
    return AgeBins(edges=edges, merge=merge)


# 3-year bins up to 57, then 58+ (the seed's 60+ threshold): fine enough for an ordinal loss to tell a near
# miss from a far one; bins 0-3 are <30, 4-12 are 30-59 (30-57), 13 is 60+ (58 and over)
FINE_AGE_EDGES = (20, 23, 26, 29, 32, 35, 38, 41, 44, 47, 50, 53, 57)
FINE_AGE_MERGE = (0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2)


def age_bins(edges: Sequence[int] = FINE_AGE_EDGES, merge: Sequence[int] = FINE_AGE_MERGE) -> LabelTransform:
    """Any age bins (``edges``: the last age of each bin but the oldest; ``merge``: each bin's age class)."""
    return AgeBins(edges=edges, merge=merge)


def age3() -> LabelTransform:
    return AgeClasses()


# ---------------------------------------------------------------- tasks for any label space
def _space(label_space):
    if label_space is None:
        from ensemble_core.labelspace import MASK_STATUS
        return MASK_STATUS
    return label_space


def _no_transform(name: str, label_transform) -> None:
    if label_transform is not None and not isinstance(label_transform, AgeClasses):
        raise ValueError(f"task {name!r} takes no label_transform (label transforms are for the mask tasks' "
                         f"ages); drop label_transform from this task entry")


class JointTask(Task):
    """One head over every final class of the run's label space (``all18`` for any label space)."""

    name = "joint"

    def __init__(self, label_transform: LabelTransform | None = None, label_space=None):
        _no_transform(self.name, label_transform)
        super().__init__(None)
        self.label_space = _space(label_space)
        self.covers = self.label_space.factor_names
        self.class_names = self.label_space.class_names()

    @property
    def heads(self) -> list[Head]:
        return [Head("joint", self.label_space.n_classes)]

    @property
    def num_original_classes(self) -> int:
        return self.label_space.n_classes

    def targets(self, samples):
        return self.label_space.classes_of(samples)

    def truth(self, samples):
        return self.label_space.classes_of(samples)

    def probs(self, logits):
        return softmax(_check_logits(logits, self.num_outputs, self.name))

    def log18(self, probs):
        return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))

    def __repr__(self) -> str:
        return f"JointTask({self.label_space!r})"


class FactorTask(Task):
    """One factor of the run's label space (``factor: colour``), or a conditional one for one class of the
    factor it is conditional on (``factor: age|male``: trained and scored on men only)."""

    def __init__(self, factor: str, label_transform: LabelTransform | None = None, label_space=None):
        _no_transform("factor", label_transform)
        super().__init__(None)
        self.label_space = space = _space(label_space)
        self.factor = str(factor)
        why = space.unit_problem(self.factor)
        if why:
            raise ValueError(f"task factor {why}")
        base, _, cond = self.factor.partition("|")
        self.base = base
        self.given = space.conditional.get(base) if cond else None
        self.given_code = space.factor(self.given).classes.index(cond) if cond else None
        self.name = self.factor
        self.covers = (self.factor,)
        self.class_names = list(space.factor(base).classes)

    @property
    def heads(self) -> list[Head]:
        return [Head(self.base, len(self.class_names))]

    @property
    def num_original_classes(self) -> int:
        return len(self.class_names)

    def rows(self, samples):
        if self.given is None:
            return np.ones(len(samples), dtype=bool)
        return self.label_space.factor_codes(samples, self.given) == self.given_code

    def targets(self, samples):
        return self.label_space.factor_codes(samples, self.base)

    def truth(self, samples):
        return self.label_space.factor_codes(samples, self.base)

    def probs(self, logits):
        return softmax(_check_logits(logits, self.num_outputs, self.name))

    def log18(self, probs):
        return self.label_space.factor_log(self.factor, probs)

    def __repr__(self) -> str:
        return f"FactorTask({self.factor!r}, {self.label_space!r})"


def joint_task(label_transform: LabelTransform | None = None, label_space=None) -> Task:
    return JointTask(label_transform, label_space=label_space)


def factor_task(factor: str, label_transform: LabelTransform | None = None, label_space=None) -> Task:
    return FactorTask(factor, label_transform, label_space=label_space)


def build_task(registry, task: Any, label_transform: Any = None, label_space: Any = None) -> Task:
    """The one builder of a :class:`Task` from recipe references: ``task`` (a name or ``{name, params}``) and,
    when given, the ``label_transform`` the member trains with. The ensemble builds tasks without a label
    transform: predictions are over each task's original classes (``Task.probs``). ``label_space`` (the run's
    :class:`~ensemble_core.labelspace.LabelSpace`) is given to a task factory that declares it (``joint``,
    ``factor``); the mask tasks do not need it."""
    ref = normalize_ref(task)
    params = dict(ref["params"])
    if label_transform is not None:
        params["label_transform"] = registry.build("label_transform", label_transform, field="label_transform")
    if label_space is not None and "label_space" in registry.get("task", ref["name"], field="task").signature().parameters:
        params["label_space"] = label_space
    return registry.build("task", {"name": ref["name"], "params": params}, field="task")


def task_key(task: Any) -> str:
    """The name members of one task are grouped (voted) under: the task's name, and for a task with a
    ``factor`` parameter (``factor``) that factor too (``factor:colour``), so two factor tasks stay apart."""
    ref = normalize_ref(task)
    factor = ref["params"].get("factor")
    return ref["name"] if factor is None else f"{ref['name']}:{factor}"


def task_label_space_problems(task: Task, label_space) -> list[str]:
    """Why ``task`` cannot run on ``label_space`` (a factor it predicts that the label space lacks)."""
    return [f"task {task.name!r} {why}" for why in (label_space.unit_problem(c) for c in task.covers) if why]
