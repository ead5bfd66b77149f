"""Data layouts (the ``dataset`` plugin kind): how a competition's files become sample tables.

A layout knows its reader, its preflight check, the label space its labels live in, the column that groups
samples for group-level splits and its submission format. The built-ins:

- ``mask_competition`` (:class:`MaskCompetition`): the mask competition's folders, read exactly as
  :func:`ensemble_core.data.layout.load_dataset` reads them; label space ``mask_status``;
- ``image_folder`` (:class:`ImageFolder`): ``DIR/train/<class name>/<image>`` and ``DIR/eval/<image>``,
  one factor (``label``); submission ``image,label`` with the class name;
- ``csv`` (:class:`CsvLayout`): a train CSV with an image column, one column per factor (class names) and an
  optional group column; the images to predict in an eval CSV or an eval folder; submission columns
  configurable.

Every loaded train table has ``image_id``, ``path``, ``person`` (the group: a person, or the image itself
when the data has no groups), one int column per factor and the final class column of the label space;
the eval table has ``image_id`` and ``path``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ensemble_core.data.check import EVAL_FIX, CheckReport, _check_images, check_data
from ensemble_core.data.layout import (IMAGE_EXTS, MAX_LISTED, SKIP_FLAG, Dataset, Problem, column_problems,
                                       load_dataset, read_csv)
from ensemble_core.errors import DataError
from ensemble_core.labelspace import (MASK_STATUS, LabelSpace, LabelSpaceError, label_space_from_params,
                                      single_factor)


class DataLayout:
    """The contract of a ``dataset`` plugin (see :func:`ensemble_core.hookspecs.ensemble_register_datasets`)."""

    name = "layout"
    group_column: str | None = None
    submission_columns: tuple[str, ...] = ("ImageID", "ans")
    submission_value = "id"             # "id": the class id; "name": the class name
    label_space: LabelSpace | None = None

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.label_space.factor_names if self.label_space is not None else ()

    def check(self, data_dir: str | Path, decode: bool = True, num_threads: int | None = None) -> CheckReport:
        raise NotImplementedError

    def load(self, data_dir: str | Path, exclude: Iterable[str | Path] = ()) -> Dataset:
        raise NotImplementedError

    def ref(self) -> dict:
        return {"name": self.name, "params": {}}


def _raise_first(problems: list[Problem], what: str) -> None:
    """A :class:`DataError` for the errors among ``problems`` (one line when there is one)."""
    errors = [p for p in problems if p.level == "error"]
    if not errors:
        return
    if len(errors) == 1:
        raise DataError(f"{what}: {errors[0]}")
    shown = "\n".join(f"  - {p}" for p in errors[:MAX_LISTED])
    more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    raise DataError(f"{what}: {len(errors)} problem(s):\n{shown}{more}\nRun `python -m ensemble_core check-data "
                    f"DIR --dataset NAME` for the full report")


def _is_image(f: Path) -> bool:
    return f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTS


def _exts() -> str:
    return "/".join(IMAGE_EXTS)


# ---------------------------------------------------------------- mask_competition
class MaskCompetition(DataLayout):
    """Today's layout, read by :mod:`ensemble_core.data.layout` unchanged (train/train.csv + person folders,
    eval/info.csv + eval/images); label space ``mask_status``; submission ``ImageID,ans`` (class ids)."""

    name = "mask_competition"
    group_column = "person"
    label_space = MASK_STATUS

    def check(self, data_dir, decode=True, num_threads=None):
        return check_data(data_dir, decode=decode, num_threads=num_threads)

    def load(self, data_dir, exclude=()):
        ds = load_dataset(data_dir, exclude=exclude)
        ds.label_space = MASK_STATUS
        return ds


# ---------------------------------------------------------------- image_folder
class ImageFolder(DataLayout):
    """``DIR/train/<class name>/<image>`` and ``DIR/eval/<image>`` (torchvision's ImageFolder convention).

    One factor (``factor``, default ``label``) whose classes are the class folders in sorted order, or
    ``classes`` when given (then every folder must be one of them). Every image is its own group.
    """

    name = "image_folder"
    submission_columns = ("image", "label")
    submission_value = "name"

    def __init__(self, classes: Sequence[str] | None = None, factor: str = "label", train_dir: str = "train",
                 eval_dir: str = "eval"):
        self.classes = None if classes is None else tuple(str(c) for c in classes)
        self.factor, self.train_dir, self.eval_dir = str(factor), str(train_dir), str(eval_dir)
        self.label_space = single_factor("image_folder", self.classes, self.factor) if self.classes else None
        self.submission_columns = ("image", self.factor)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return (self.factor,)

    def ref(self):
        return {"name": self.name, "params": {"classes": list(self.classes) if self.classes else None,
                                              "factor": self.factor}}

    def _scan(self, data_dir) -> tuple[list[Problem], dict[str, list[Path]], list[Path] | None]:
        root = Path(data_dir).expanduser().resolve()
        train = root / self.train_dir
        problems: list[Problem] = []
        by_class: dict[str, list[Path]] = {}
        if not train.is_dir():
            problems.append(Problem(str(train), f"train folder missing; the image_folder layout needs "
                                                f"{root}/{self.train_dir}/<class name>/<image>"))
            return problems, by_class, None
        for folder in sorted(p for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if self.classes is not None and folder.name not in self.classes:
                problems.append(Problem(str(folder), f"class folder {folder.name!r} is not one of the declared "
                                                     f"classes {', '.join(self.classes)}; add it to classes or "
                                                     f"remove the folder"))
                continue
            images = sorted(f for f in folder.iterdir() if _is_image(f))
            others = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and not _is_image(f)]
            for f in others[:MAX_LISTED]:
                problems.append(Problem(str(f), f"not an image ({_exts()}); it is ignored", level="warning"))
            if not images:
                problems.append(Problem(str(folder), f"class folder {folder.name!r} has no images ({_exts()}); "
                                                     f"add its images or remove the folder"))
                continue
            by_class[folder.name] = images
        loose = [f for f in train.iterdir() if _is_image(f)]
        if loose:
            problems.append(Problem(str(loose[0]), f"{len(loose)} image(s) directly in {train} belong to no class; "
                                                   f"move each into its class folder {train}/<class name>/",
                                    level="warning"))
        if not by_class and not any(p.level == "error" for p in problems):
            problems.append(Problem(str(train), f"no class folders; put each class's images in "
                                                f"{train}/<class name>/"))
        if self.classes is not None:
            for c in self.classes:
                if c not in by_class and not (train / c).is_dir():
                    problems.append(Problem(str(train / c), f"declared class {c!r} has no folder; add "
                                                            f"{train / c} with its images"))
        ev = root / self.eval_dir
        eval_images = sorted(f for f in ev.iterdir() if _is_image(f)) if ev.is_dir() else []
        if not eval_images:
            nested = ev.is_dir() and any(p.is_dir() and any(_is_image(f) for f in p.iterdir()) for p in ev.iterdir())
            why = ("folder missing" if not ev.is_dir() else
                   "holds class folders, not images" if nested else "has no images")
            problems.append(Problem(str(ev), f"{why}: the image_folder layout needs the images to predict directly "
                                             f"in {ev}/<image> ({_exts()}), with no class folders"))
        return problems, by_class, eval_images

    def _space(self, by_class: Mapping[str, list]) -> LabelSpace:
        return self.label_space or single_factor("image_folder", sorted(by_class), self.factor)

    def check(self, data_dir, decode=True, num_threads=None):
        t0 = time.perf_counter()
        root = Path(data_dir).expanduser().resolve()
        report = CheckReport(root=str(root))
        problems, by_class, eval_images = self._scan(root)
        report.problems += problems
        images = [str(f) for fs in by_class.values() for f in fs]
        report.n_people = report.n_photos = len(images)
        report.n_eval_photos = len(eval_images or [])
        _check_images(images, report, decode, num_threads)
        _check_images([str(f) for f in eval_images or []], report, decode, num_threads, EVAL_FIX)
        report.seconds = time.perf_counter() - t0
        return report

    def load(self, data_dir, exclude=()):
        root = Path(data_dir).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"data folder {str(root)!r} does not exist; pass the folder holding "
                            f"{self.train_dir}/<class name>/ and {self.eval_dir}/")
        problems, by_class, eval_images = self._scan(root)
        _raise_first(problems, f"cannot read {root} as an image_folder data set")
        space = self._space(by_class)
        excluded = {str(Path(p).resolve()) for p in exclude}
        rows = []
        train = root / self.train_dir
        for cls, files in by_class.items():
            code = space.factor(self.factor).classes.index(cls)
            rows += [(f"{cls}/{f.name}", str(f), code) for f in files if str(f) not in excluded]
        table = pd.DataFrame(rows, columns=["image_id", "path", self.factor])
        table.insert(2, "person", table["image_id"])
        table[self.factor] = table[self.factor].astype(np.int64)
        table[space.class_column] = space.classes_of(table)
        ev = pd.DataFrame({"image_id": [f.name for f in eval_images], "path": [str(f) for f in eval_images]})
        order = ev["image_id"].tolist()
        bad = ev["path"].isin(excluded).to_numpy()
        ds = Dataset(train=table.reset_index(drop=True), eval=ev[~bad].reset_index(drop=True), root=train.parent,
                     source=self.name, skipped=sorted(excluded), eval_skipped=ev["image_id"][bad].tolist(),
                     eval_order=order)
        ds.label_space = space
        return ds


# ---------------------------------------------------------------- csv
class CsvLayout(DataLayout):
    """A train CSV (``train_csv``, relative to the data folder): ``image_column`` (a path relative to
    ``images_dir``, default the CSV's folder), one column per factor holding class names, an optional
    ``group_column`` (photos of one person / one object stay on one side of every split).

    The label space: ``factors`` (``{name: [class names]}``, in code order; ``conditional`` as in
    :class:`~ensemble_core.labelspace.LabelSpace`) or ``label_space`` (a registered label space). The images to
    predict: ``eval_csv`` (its ``image_column``, relative to ``eval_images_dir``, default the eval CSV's
    folder) or else every image in ``eval_dir``. ``submission_columns``: the id column, then ``label`` (the
    final class) and/or factor names; ``submission_value``: ``name`` (class names) or ``id`` (class ids).
    """

    name = "csv"

    def __init__(self, factors: Mapping[str, Sequence[str]] | Sequence | None = None, train_csv: str = "train.csv",
                 image_column: str = "image", group_column: str | None = "auto", images_dir: str | None = None,
                 eval_csv: str | None = None, eval_dir: str = "eval", eval_images_dir: str | None = None,
                 conditional: Mapping[str, str] | None = None, label_space: Any = None,
                 submission_columns: Sequence[str] = ("image", "label"), submission_value: str = "name",
                 eval_image_column: str | None = None, registry=None):
        self.eval_image_column = str(eval_image_column or image_column)
        if factors is not None and label_space is not None:
            raise ValueError("csv: give factors ({name: [class names]}) or label_space (a registered label space), "
                             "not both")
        space = None
        if factors is not None:
            space = label_space_from_params("csv", factors, conditional)
        elif label_space is not None:
            if registry is None:
                raise ValueError("csv: label_space needs the registry to build it")
            space = registry.build("label_space", label_space, field="dataset.params.label_space")
        if space is not None:   # codes come from the CSV's class names: no column transform (ages in years)
            space = self._plain(space)
        self.label_space = space
        self.conditional = dict(conditional or {})
        self.train_csv, self.image_column = str(train_csv), str(image_column)
        self.group_column = None if group_column is None else str(group_column)
        self.images_dir, self.eval_csv, self.eval_dir = images_dir, eval_csv, str(eval_dir)
        self.eval_images_dir = eval_images_dir
        self.submission_columns = tuple(str(c) for c in submission_columns)
        if submission_value not in ("name", "id"):
            raise ValueError(f"csv: submission_value must be 'name' or 'id', got {submission_value!r}")
        self.submission_value = submission_value
        if space is not None:
            self._check_columns(space)

    @staticmethod
    def _plain(space: LabelSpace) -> LabelSpace:
        """The CSV holds class names: a factor read through a column transform keeps it only when it names a
        column value per class (``Factor.values``: the mask space's ages), which the table then holds."""
        from ensemble_core.labelspace import Factor
        if all(f.transform is None or f.values is not None for f in space.factors):
            return space
        return LabelSpace(space.name, [f if f.values is not None else Factor(f.name, f.classes)
                                       for f in space.factors],
                          conditional=space.conditional, class_column=space.class_column)

    def _check_columns(self, space: LabelSpace) -> None:
        cols = self.submission_columns
        if len(cols) < 2 or len(set(cols)) != len(cols):
            raise ValueError(f"csv: submission_columns {list(cols)} must be the id column followed by factor names "
                             f"({', '.join(space.factor_names)}) and / or one column for the final class (any other "
                             f"name, e.g. label or ans)")
        if self.group_column not in (None, "auto") and self.group_column in space.factor_names + (self.image_column,):
            raise ValueError(f"csv: group_column {self.group_column!r} is also the image column or a factor")

    def _group(self, columns) -> str | None:
        """The group column: as given, or with ``auto`` a column named ``group`` or ``person`` when there is one."""
        if self.group_column != "auto":
            return self.group_column
        return next((c for c in ("group", "person") if c in columns), None)

    def _infer(self, df: pd.DataFrame) -> LabelSpace:
        """No declared factors: every column but the image and group columns is a factor, its classes the
        values it holds (sorted)."""
        group = self._group(df.columns)
        names = [c for c in df.columns if c not in (self.image_column, group)]
        if not names:
            raise DataError(f"{self.train_csv}: no factor columns besides {self.image_column!r}"
                            + (f" and {group!r}" if group else "") + "; add one column per factor")
        try:
            space = label_space_from_params("csv", [(n, sorted(set(df[n].str.strip()) - {""})) for n in names],
                                            self.conditional)
            self._check_columns(space)
        except (LabelSpaceError, ValueError) as exc:
            raise DataError(f"{self.train_csv}: {exc}") from None
        return space

    def ref(self):
        return {"name": self.name, "params": {}}

    # ---- reading ---------------------------------------------------------------
    def _train_table(self, root: Path) -> tuple[list[Problem], pd.DataFrame | None, Path, LabelSpace | None]:
        csv_path = root / self.train_csv
        problems: list[Problem] = []
        if not csv_path.is_file():
            problems.append(Problem(str(csv_path), f"train CSV not found; the csv layout needs {self.train_csv} "
                                                   f"with an image column {self.image_column!r} and one column "
                                                   f"per factor"))
            return problems, None, csv_path, None
        try:
            df = read_csv(csv_path)
        except DataError as exc:
            return [Problem(str(csv_path), str(exc))], None, csv_path, None
        if self.image_column not in df.columns:
            return (column_problems(csv_path, df.columns, [self.image_column]), None, csv_path, None)
        try:
            space = self.label_space or self._infer(df)
        except DataError as exc:
            return [Problem(str(csv_path), str(exc))], None, csv_path, None
        group = self._group(df.columns)
        problems += column_problems(csv_path, df.columns, self._columns(space, group))
        if any(p.level == "error" for p in problems):
            return problems, None, csv_path, space
        base = (root / self.images_dir) if self.images_dir else csv_path.parent
        for i in np.flatnonzero((df[self.image_column].str.strip() == "").to_numpy())[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"{csv_path.name} line {i + 2}: empty {self.image_column!r}"))
        for f in space.factors:
            values = df[f.name].str.strip()
            bad = ~values.isin(f.classes)
            for i in np.flatnonzero(bad.to_numpy())[:MAX_LISTED]:
                problems.append(Problem(str(csv_path), f"{csv_path.name} line {i + 2} (image "
                                                       f"{df[self.image_column].iat[i]!r}): {f.name} "
                                                       f"{df[f.name].iat[i]!r} is not one of the declared classes "
                                                       f"{', '.join(f.classes)}; fix the row or declare the class"))
            if bad.sum() > MAX_LISTED:
                problems.append(Problem(str(csv_path), f"... and {int(bad.sum()) - MAX_LISTED} more bad "
                                                       f"{f.name} value(s)"))
        dup = df[self.image_column][df[self.image_column].duplicated()]
        for v in dup.unique()[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"image {v!r} is listed twice in {csv_path.name}; list each "
                                                   f"image once"))
        df = df.assign(_path=[str((base / p).resolve()) for p in df[self.image_column].str.strip()])
        if group:
            df = df.assign(_group=df[group].astype(str))
        return problems, df, csv_path, space

    def _columns(self, space: LabelSpace, group: str | None) -> list[str]:
        return [self.image_column, *space.factor_names] + ([group] if group else [])

    def _eval_table(self, root: Path) -> tuple[list[Problem], pd.DataFrame | None]:
        if self.eval_csv:
            path = root / self.eval_csv
            if not path.is_file():
                return [Problem(str(path), f"eval CSV not found (column {self.eval_image_column!r})")], None
            try:
                df = read_csv(path)
            except DataError as exc:
                return [Problem(str(path), str(exc))], None
            probs = [p for p in column_problems(path, df.columns, [self.eval_image_column]) if p.level == "error"]
            if probs:
                return probs, None
            base = (root / self.eval_images_dir) if self.eval_images_dir else path.parent
            ids = df[self.eval_image_column].str.strip().tolist()
            return [], pd.DataFrame({"image_id": ids, "path": [str((base / i).resolve()) for i in ids]})
        folder = root / self.eval_dir
        if not folder.is_dir():
            return [Problem(str(folder), "no eval folder and no eval_csv: no submission is written",
                            level="warning")], None
        files = sorted(f for f in folder.iterdir() if _is_image(f))
        if not files:
            return [Problem(str(folder), f"eval folder has no images ({_exts()}); put the images to predict "
                                         f"there, or name them in an eval CSV (dataset params eval_csv)")], None
        return [], pd.DataFrame({"image_id": [f.name for f in files], "path": [str(f) for f in files]})

    def check(self, data_dir, decode=True, num_threads=None):
        t0 = time.perf_counter()
        root = Path(data_dir).expanduser().resolve()
        report = CheckReport(root=str(root))
        problems, df, csv_path, _ = self._train_table(root)
        report.problems += problems
        images: list[str] = []
        if df is not None:
            for i, p in enumerate(df["_path"]):
                if Path(p).is_file():
                    images.append(p)
                else:
                    report.problems.append(Problem(p, f"image listed in {csv_path.name} line {i + 2} not found; "
                                                      f"restore it or remove the row", skippable=True))
            report.n_photos = len(df)
            report.n_people = int(df["_group"].nunique()) if "_group" in df else len(df)
        eval_problems, ev = self._eval_table(root)
        report.problems += eval_problems
        eval_images = []
        if ev is not None:
            for p, i in zip(ev["path"], ev["image_id"]):
                if Path(p).is_file():
                    eval_images.append(p)
                else:
                    report.problems.append(Problem(p, f"eval image {i!r} missing; put the file there, or run with "
                                                      f"{SKIP_FLAG} to give it the fallback class", skippable=True))
        report.n_eval_photos = len(eval_images)
        _check_images(images, report, decode, num_threads)
        _check_images(eval_images, report, decode, num_threads, EVAL_FIX)
        report.seconds = time.perf_counter() - t0
        return report

    def load(self, data_dir, exclude=()):
        root = Path(data_dir).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"data folder {str(root)!r} does not exist; pass the folder holding {self.train_csv}")
        problems, df, csv_path, space = self._train_table(root)
        _raise_first(problems, f"cannot read {csv_path}")
        excluded = {str(Path(p).resolve()) for p in exclude}
        df = df[~df["_path"].isin(excluded)].reset_index(drop=True)
        table = pd.DataFrame({"image_id": df[self.image_column].str.strip().to_numpy(), "path": df["_path"].to_numpy()})
        table["person"] = df["_group"].to_numpy() if "_group" in df else table["image_id"].to_numpy()
        for f in space.factors:
            codes = df[f.name].str.strip().map({c: i for i, c in enumerate(f.classes)}).astype(np.int64)
            table[f.name] = codes if f.transform is None else np.asarray(f.values)[codes.to_numpy()]
        table[space.class_column] = space.classes_of(table)
        eval_problems, ev = self._eval_table(root)
        _raise_first(eval_problems, f"cannot read the eval images of {root}")
        order, eval_skipped = None, []
        if ev is not None:
            order = ev["image_id"].tolist()
            bad = ev["path"].isin(excluded).to_numpy()
            eval_skipped = ev["image_id"][bad].tolist()
            ev = ev[~bad].reset_index(drop=True)
        ds = Dataset(train=table, eval=ev, root=root, source=self.name, skipped=sorted(excluded),
                     eval_skipped=eval_skipped, eval_order=order)
        ds.label_space = space
        return ds


# ---------------------------------------------------------------- factories (what plugins register)
def mask_competition() -> DataLayout:
    return MaskCompetition()


def image_folder(classes: Sequence[str] | None = None, factor: str = "label", train_dir: str = "train",
                 eval_dir: str = "eval") -> DataLayout:
    return ImageFolder(classes=classes, factor=factor, train_dir=train_dir, eval_dir=eval_dir)


def csv_layout(factors: Mapping[str, Sequence[str]] | Sequence | None = None, train_csv: str = "train.csv",
               image_column: str = "image", group_column: str | None = "auto", images_dir: str | None = None,
               eval_csv: str | None = None, eval_dir: str = "eval", eval_images_dir: str | None = None,
               conditional: Mapping[str, str] | None = None, label_space: Any = None,
               submission_columns: Sequence[str] = ("image", "label"), submission_value: str = "name",
               eval_image_column: str | None = None, registry=None) -> DataLayout:
    return CsvLayout(factors=factors, train_csv=train_csv, image_column=image_column, group_column=group_column,
                     images_dir=images_dir, eval_csv=eval_csv, eval_dir=eval_dir, eval_images_dir=eval_images_dir,
                     conditional=conditional, label_space=label_space, submission_columns=submission_columns,
                     submission_value=submission_value, eval_image_column=eval_image_column, registry=registry)


DEFAULT_DATASET = "mask_competition"


def build_layout(registry, ref: Any = None) -> DataLayout:
    """The data layout of a recipe's ``dataset`` field (None: ``mask_competition``); a layout object is
    returned as it is. Bad parameters raise :class:`DataError` naming the field."""
    if ref is not None and not isinstance(ref, (str, Mapping)):
        return ref
    try:
        return registry.build("dataset", ref if ref is not None else DEFAULT_DATASET, field="dataset")
    except (ValueError, LabelSpaceError) as exc:
        raise DataError(f"dataset: {exc}") from None


def dataset_label_space(dataset) -> LabelSpace:
    """The label space of a loaded :class:`Dataset` (``mask_status`` for one read without a layout)."""
    return getattr(dataset, "label_space", None) or MASK_STATUS


def layout_from_flags(name: str | None, params_json: str | None = None):
    """The data layout of ``--dataset NAME [--dataset-params JSON]`` (the commands' flags), built from this
    process's plugin catalog; a bad name or parameter is a :class:`DataError` naming the flag."""
    import json

    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.manager import get_registry

    try:
        params = json.loads(params_json) if params_json else {}
    except ValueError as exc:
        raise DataError(f"--dataset-params is not JSON: {exc}; write e.g. '{{\"group_column\": \"person\"}}'") from None
    if not isinstance(params, dict):
        raise DataError(f"--dataset-params must be a JSON object, got {params_json}")
    try:
        return build_layout(get_registry(), {"name": name or "mask_competition", "params": params})
    except EnsembleCoreError as exc:
        raise DataError(f"--dataset: {exc}") from None


def cli_check_data(argv: Sequence[str] | None = None) -> int:
    """``python -m ensemble_core check-data DIR [--dataset NAME] [--dataset-params JSON]``: the preflight scan
    of any data layout (the mask competition's by default)."""
    import argparse
    import sys

    from ensemble_core.atomic import atomic_write_json

    parser = argparse.ArgumentParser(prog="ensemble-core check-data",
                                     description="Scan a data set and report every problem (exit 1 when any).")
    parser.add_argument("dir", help="data set root (mask competition: holding train/ and eval/, its train/ folder, "
                                    "or a CSV; image_folder: holding train/<class>/ and eval/; csv: holding the "
                                    "train CSV)")
    parser.add_argument("--no-decode", action="store_true", help="only check file markers, skip full decoding")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dataset", default=None,
                        help="data layout: mask_competition (default), image_folder, csv (python -m ensemble_core "
                             "list datasets)")
    parser.add_argument("--dataset-params", default=None, metavar="JSON",
                        help='its parameters as a JSON object, e.g. \'{"group_column": "person"}\'')
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.dataset is None and args.dataset_params is None:
            report = check_data(args.dir, decode=not args.no_decode, num_threads=args.threads)
        else:
            layout = layout_from_flags(args.dataset, args.dataset_params)
            report = layout.check(args.dir, decode=not args.no_decode, num_threads=args.threads)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.json:
        atomic_write_json(args.json, report.to_dict(), indent=1)
    return 0 if report.ok else 1
