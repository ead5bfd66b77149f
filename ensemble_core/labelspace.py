"""A label space as data: the factors of a competition's labels and how its final classes compose.

    space = LabelSpace("product", (Factor("category", ("shirt", "shoe")), Factor("colour", ("red", "blue"))))
    space.n_classes            # 4 = 2 x 2, product order: the last factor varies fastest
    space.class_names()        # ["shirt/red", "shirt/blue", "shoe/red", "shoe/blue"]
    space.encode(category=[1], colour=[0])   # -> [2]
    space.decode([2])          # -> {"category": [1], "colour": [0]}

A final class id is the mixed-radix number of its factor codes (``class = sum(code_f * stride_f)``), so
``mask_status`` (mask 3 x gender 2 x age 3) gives ``class = mask*6 + gender*3 + age`` exactly as
:mod:`ensemble_core.labels`. A factor may be *conditional* on another (``conditional={"age": "gender"}``):
then a task may predict it for one class of the other factor only, and the coverage units are
``age|male`` and ``age|female`` (a task predicting ``age`` covers both). A factor's ``transform`` maps
the sample table's column to its codes (the mask space's age bins are a transform of the age in years).

Sample tables hold one int column per factor (named as the factor), the group column ``person`` and the
final class column (:attr:`LabelSpace.class_column`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ensemble_core.errors import EnsembleCoreError

# columns every sample table has besides the factors: a factor cannot be named like one of them
RESERVED_COLUMNS = ("image_id", "path", "person")


class LabelSpaceError(EnsembleCoreError):
    """A label space that cannot be built (colliding factor names, no classes) or a task that does not fit it."""


@dataclass(frozen=True)
class Factor:
    """One part of the label: its name (also the sample table's column) and its class names in code order."""

    name: str
    classes: tuple[str, ...]
    transform: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False, repr=False)
    # with a transform: a column value per class that the transform maps back to that class (a reader that
    # only knows the class, e.g. a CSV of age bins, writes these: the mask space's ages 20, 45, 60)
    values: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.classes)


def _safe_log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, 1.0))


class LabelSpace:
    """Factors, their product (the final classes) and the conditional factors; see the module doc."""

    def __init__(self, name: str, factors: Sequence[Factor | tuple], conditional: Mapping[str, str] | None = None,
                 class_column: str = "class_id", separator: str = "/"):
        self.name = str(name)
        self.factors = tuple(f if isinstance(f, Factor) else Factor(str(f[0]), tuple(map(str, f[1])))
                             for f in factors)
        self.conditional = dict(conditional or {})
        self.class_column = class_column
        self.separator = separator
        self._check()
        sizes = [f.size for f in self.factors]
        self.strides = tuple(int(math.prod(sizes[i + 1:])) for i in range(len(sizes)))
        self._grids = self.decode(np.arange(self.n_classes))

    # ---- construction checks ------------------------------------------------
    def _check(self) -> None:
        where = f"label space {self.name!r}"
        names = [f.name for f in self.factors]
        if not names:
            raise LabelSpaceError(f"{where}: no factors; declare at least one factor with its class names")
        seen: dict[str, str] = {}
        for n in names:
            if not n or not isinstance(n, str) or any(c in n for c in "|=/ "):
                raise LabelSpaceError(f"{where}: factor name {n!r} must be a non-empty word without '|', '=', "
                                      f"'/' or spaces")
            key = n.lower()
            if key in seen:
                raise LabelSpaceError(f"{where}: factor names collide: {seen[key]!r} and {n!r} (factors: "
                                      f"{', '.join(names)}); give every factor its own name")
            if key in RESERVED_COLUMNS or key == self.class_column.lower():
                raise LabelSpaceError(f"{where}: factor name {n!r} collides with the sample table's column "
                                      f"{key!r} (reserved: {', '.join(RESERVED_COLUMNS + (self.class_column,))}); "
                                      f"rename the factor")
            seen[key] = n
        for f in self.factors:
            if f.size < 1:
                raise LabelSpaceError(f"{where}: factor {f.name!r} has no classes")
            if len(set(f.classes)) != f.size:
                dup = sorted({c for c in f.classes if f.classes.count(c) > 1})
                raise LabelSpaceError(f"{where}: factor {f.name!r} lists class(es) {', '.join(map(repr, dup))} "
                                      f"twice; every class name must be unique")
        for f, given in self.conditional.items():
            if f not in names or given not in names or f == given:
                raise LabelSpaceError(f"{where}: conditional {f}|{given}: both must be two different factors of "
                                      f"the label space ({', '.join(names)})")

    # ---- shape ---------------------------------------------------------------
    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    @property
    def n_classes(self) -> int:
        return int(math.prod(f.size for f in self.factors))

    def factor(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise LabelSpaceError(f"label space {self.name!r} has no factor {name!r}; its factors are "
                              f"{', '.join(self.factor_names)}")

    def class_names(self) -> list[str]:
        names = [[]]
        for f in self.factors:
            names = [n + [c] for n in names for c in f.classes]
        return [self.separator.join(n) for n in names]

    # ---- codes ---------------------------------------------------------------
    def encode(self, **codes: Any) -> np.ndarray:
        """Factor codes (one array per factor, by name) -> final class ids."""
        missing = [n for n in self.factor_names if n not in codes]
        if missing:
            raise LabelSpaceError(f"label space {self.name!r}: encode needs every factor; missing "
                                  f"{', '.join(missing)}")
        out = 0
        for f, stride in zip(self.factors, self.strides):
            out = out + np.asarray(codes[f.name]) * stride
        return np.asarray(out)

    def decode(self, ids: Any) -> dict[str, np.ndarray]:
        """Final class ids -> ``{factor: codes}``."""
        ids = np.asarray(ids)
        return {f.name: (ids // stride) % f.size for f, stride in zip(self.factors, self.strides)}

    def factor_codes(self, samples: Any, name: str) -> np.ndarray:
        """The codes of factor ``name`` of a sample table (its column, through the factor's transform)."""
        f = self.factor(name)
        try:
            values = np.asarray(samples[name])
        except KeyError:
            raise KeyError(f"samples have no column {name!r}; a table of label space {self.name!r} has one "
                           f"column per factor ({', '.join(self.factor_names)})") from None
        values = f.transform(values) if f.transform is not None else values
        return np.asarray(values).astype(np.int64)

    def classes_of(self, samples: Any) -> np.ndarray:
        """Final class ids of a sample table, from its factor columns."""
        return self.encode(**{n: self.factor_codes(samples, n) for n in self.factor_names}).astype(np.int64)

    # ---- coverage ------------------------------------------------------------
    def units(self) -> tuple[str, ...]:
        """What a set of tasks must predict exactly once: each factor, a conditional one per class of the
        factor it is conditional on (``age|male``)."""
        out = []
        for f in self.factors:
            given = self.conditional.get(f.name)
            if given is None:
                out.append(f.name)
            else:
                out.extend(f"{f.name}|{c}" for c in self.factor(given).classes)
        return tuple(out)

    def expand(self, cover: str) -> tuple[str, ...]:
        """The units a task's ``covers`` entry stands for (``age`` -> ``age|male``, ``age|female``)."""
        if cover in self.factor_names and cover in self.conditional:
            return tuple(u for u in self.units() if u.split("|", 1)[0] == cover)
        return (cover,)

    def unit_problem(self, cover: str) -> str | None:
        """Why ``cover`` is not something this label space has (None when it is)."""
        if all(u in self.units() for u in self.expand(cover)):
            return None
        base = cover.split("|", 1)[0]
        if base not in self.factor_names:
            return (f"predicts factor {base!r}, which label space {self.name!r} lacks; its factors are "
                    f"{', '.join(self.factor_names)}")
        return (f"predicts {cover!r}, which label space {self.name!r} does not declare; it has "
                f"{', '.join(self.units())}")

    def check_coverage(self, task_covers: Mapping[str, Sequence[str]]) -> list[str]:
        """Problems with a set of tasks that should cover every unit exactly once."""
        seen: dict[str, str] = {}
        problems = []
        for task, covers in task_covers.items():
            for c in covers:
                why = self.unit_problem(c)
                if why:
                    problems.append(f"task {task!r} {why}")
                    continue
                for u in self.expand(c):
                    if u in seen:
                        problems.append(f"tasks {seen[u]!r} and {task!r} both predict {u}")
                    seen[u] = task
        missing = [u for u in self.units() if u not in seen]
        if missing and not problems:
            problems.append(f"no task predicts {', '.join(missing)}; add a `factor` task for each "
                            f"({{name: factor, params: {{factor: {missing[0]}}}}}), or use `joint`")
        return problems

    # ---- probabilities -------------------------------------------------------
    def factor_log(self, unit: str, probs: np.ndarray) -> np.ndarray:
        """One factor's probabilities ``(N, size)`` broadcast onto the final classes as a log term; for a
        conditional unit ``f|c`` the term is 0 on the classes whose conditioning factor is not ``c``."""
        probs = np.asarray(probs, dtype=np.float64)
        base, _, cond = unit.partition("|")
        out = _safe_log(probs[:, self._grids[self.factor(base).name]])
        if cond:
            given = self.conditional.get(base)
            if given is None or cond not in self.factor(given).classes:
                raise LabelSpaceError(f"label space {self.name!r}: {unit!r} is not a conditional unit; it has "
                                      f"{', '.join(self.units())}")
            out[:, self._grids[given] != self.factor(given).classes.index(cond)] = 0.0
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "factors": {f.name: list(f.classes) for f in self.factors},
                "conditional": dict(self.conditional), "n_classes": self.n_classes}

    def __repr__(self) -> str:
        parts = ", ".join(f"{f.name}({f.size})" for f in self.factors)
        return f"LabelSpace({self.name!r}: {parts})"


def label_space_from_params(name: str, factors: Mapping[str, Sequence[str]] | Sequence,
                            conditional: Mapping[str, str] | None = None, class_column: str = "class_id") -> LabelSpace:
    """A label space from plain data: ``factors`` maps a factor name to its class names (in code order), or is
    a list of ``[name, [classes]]`` pairs (a mapping cannot hold one name twice)."""
    if not isinstance(factors, (Mapping, list, tuple)):
        raise LabelSpaceError(f"label space {name!r}: factors must map each factor to its class names, e.g. "
                              f"{{mask: [wear, incorrect, none], gender: [male, female]}} (on the command line: "
                              f"--dataset.params.factors='{{mask: [a, b], gender: [m, f]}}'), got {factors!r}")
    items = list(factors.items()) if isinstance(factors, Mapping) else list(factors)
    out = []
    for item in items:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], (list, tuple))):
            raise LabelSpaceError(f"label space {name!r}: a factor is [name, [class names]], got {item!r}")
        out.append(Factor(str(item[0]), tuple(str(c) for c in item[1])))
    return LabelSpace(name, out, conditional=conditional, class_column=class_column)


AGE_CLASS_YEARS = (20, 45, 60)   # a year in each age class (as data.layout.AGE_CLASS_YEARS)


def mask_status() -> LabelSpace:
    """The mask competition's 18 classes: mask(3) x gender(2) x age(3), age conditional on gender, the age
    bins a transform of the age in years (``labels.age_to_class``); the class column is ``label18``."""
    from ensemble_core import labels as L

    return LabelSpace("mask_status", (Factor("mask", L.MASK_NAMES), Factor("gender", L.GENDER_NAMES),
                                      Factor("age", L.AGE_NAMES, transform=L.age_to_class,
                                             values=AGE_CLASS_YEARS)),
                      conditional={"age": "gender"}, class_column="label18")


MASK_STATUS = mask_status()


def space_record(space: LabelSpace) -> dict[str, Any]:
    """A label space as plain JSON data (an exported ensemble's ``ensemble.json``, a prediction job):
    :meth:`LabelSpace.describe` plus what :func:`space_from_record` needs to rebuild it."""
    return {**space.describe(), "class_column": space.class_column, "separator": space.separator,
            "transformed": [f.name for f in space.factors if f.transform is not None]}


def space_from_record(record: Mapping[str, Any]) -> LabelSpace:
    """The label space of :func:`space_record`: ``mask_status`` as itself (its age factor reads ages in years);
    any other as its factors, classes and conditions (a factor read through a column transform keeps its classes
    but not the transform: enough to build tasks and write submissions, not to read a training table)."""
    try:
        if space_record(MASK_STATUS) == dict(record):
            return MASK_STATUS
        return label_space_from_params(str(record["name"]), [(f, list(c)) for f, c in record["factors"].items()],
                                       record.get("conditional") or {},
                                       class_column=str(record.get("class_column") or "class_id"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise LabelSpaceError(f"label space record {dict(record)!r} is malformed ({exc!r}); it is written by "
                              f"space_record()") from None


def single_factor(name: str, classes: Sequence[str], factor: str = "label") -> LabelSpace:
    """One factor whose classes are the final classes (an ImageFolder data set)."""
    return LabelSpace(name, (Factor(factor, tuple(str(c) for c in classes)),), class_column="class_id")


def static_label_space(layout) -> LabelSpace | None:
    """The layout's label space as far as it is known before any file is read: a layout whose classes come
    from its folders (``image_folder``) gives its factor names with a placeholder class, enough to check
    which factors the tasks predict."""
    space = getattr(layout, "label_space", None)
    if space is not None:
        return space
    names = tuple(getattr(layout, "factor_names", ()) or ())
    if not names:
        return None   # the factors themselves come from the data (a csv without declared factors)
    return LabelSpace(getattr(layout, "name", "dataset"), [Factor(n, ("?",)) for n in names])
