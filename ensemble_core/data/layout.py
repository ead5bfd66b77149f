"""Read a data set from disk into sample tables.

Two layouts are understood:

* the competition layout::

      ROOT/train/train.csv            id,gender,race,age,path
      ROOT/train/images/<path>/       mask1..mask5, incorrect_mask, normal (.jpg/.jpeg/.png, any case)
      ROOT/eval/info.csv              ImageID,ans
      ROOT/eval/images/<ImageID>

  ``load_dataset`` accepts ROOT, ROOT/train or ROOT/train/train.csv.

* a plain CSV of labelled images (any other data set): a ``path`` column
  (relative paths are resolved against the CSV's folder) and either
  ``label18`` or ``mask``, ``gender`` and ``age`` columns; an optional
  ``person`` column groups photos of one person (otherwise each photo is its
  own person). ``gender`` may be 0/1 or male/female; ``age`` is in years.
  With ``label18`` only, ages are set to a representative year of the class
  (20, 45, 60).

The resulting ``train`` table has the columns ``image_id`` (unique relative
path), ``path`` (absolute), ``person``, ``mask``, ``gender`` (0 male / 1
female), ``age`` (years, 60 = 60+) and ``label18``; ``eval`` has ``image_id``
and ``path``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ensemble_core.errors import DataError
from ensemble_core.labels import age_to_class, class_id

TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
EVAL_COLUMNS = ("ImageID", "ans")
PHOTO_MASK = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0, "incorrect_mask": 1, "normal": 2}
PHOTO_STEMS = tuple(PHOTO_MASK)
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
GENDER_CODES = {"male": 0, "female": 1}
AGE_RANGE = (0, 120)
# representative years for an age class when only label18 is known
AGE_CLASS_YEARS = (20, 45, 60)
MAX_LISTED = 10
SKIP_FLAG = "--skip_bad_files"   # how the run commands spell the option that leaves bad files out


@dataclass
class Problem:
    """One thing wrong with a data set. ``path`` is the file or folder (or CSV) it is about."""

    path: str
    message: str
    level: str = "error"        # "error" or "warning" (warnings never fail a check)
    skippable: bool = False     # True when skipping ``path`` (an image or a person folder) works around it

    def __str__(self) -> str:
        tag = "" if self.level == "error" else f"[{self.level}] "
        return f"{tag}{self.path}: {self.message}"


@dataclass
class Layout:
    """Where the files of a data set are."""

    kind: str                       # "competition" or "csv"
    root: Path
    train_csv: Path | None
    images_dir: Path | None = None  # competition: train/images
    eval_dir: Path | None = None    # competition: eval (may be absent)


@dataclass
class Dataset:
    train: pd.DataFrame
    eval: pd.DataFrame | None
    root: Path
    source: str = "competition"     # "competition" or "csv"
    skipped: list[str] = field(default_factory=list)
    eval_skipped: list[str] = field(default_factory=list)  # eval ImageIDs left out (bad / missing files)
    eval_order: list[str] | None = None   # every eval ImageID in info.csv order (the submission's rows)
    label_space: Any = None         # the labels' LabelSpace (None: mask_status; set by the dataset plugin)

    @property
    def n_people(self) -> int:
        return int(self.train["person"].nunique())

    def persons(self) -> pd.DataFrame:
        return persons_table(self.train)


STRATUM_COLUMN = "stratum"


def persons_table(train: pd.DataFrame, class_column: str | None = None) -> pd.DataFrame:
    """One row per person (first photo's labels): ``person``, ``gender``, ``age``, ``age_class``.

    A table of another label space (no ``gender`` / ``age`` columns) gives ``person`` and ``stratum`` (the
    final class of the group's first sample, from ``class_column`` or the last int column)."""
    if "gender" in train.columns and "age" in train.columns:
        p = train.drop_duplicates("person")[["person", "gender", "age"]].reset_index(drop=True)
        p["age_class"] = age_to_class(p["age"].to_numpy())
        return p
    col = class_column or [c for c in train.columns if c not in ("image_id", "path", "person")][-1]
    p = train.drop_duplicates("person")[["person", col]].reset_index(drop=True)
    return p.rename(columns={col: STRATUM_COLUMN})


# ---------------------------------------------------------------- locating
def resolve_layout(path: str | Path) -> Layout:
    """Work out which layout ``path`` is (dataset root, its train folder, train.csv, or a plain CSV)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path {str(path)!r} does not exist. Pass the data set root (the folder holding "
                        f"train/ and eval/), its train/ folder, or a CSV of labelled images")
    path = path.resolve()
    if path.is_file():
        if path.name == "train.csv" and (path.parent / "images").is_dir():
            path = path.parent
        else:
            return Layout("csv", path.parent, path)
    if (path / "train" / "train.csv").is_file() or (path / "train").is_dir():
        root = path
        train_dir = path / "train"
    elif (path / "train.csv").is_file() or (path / "images").is_dir():
        train_dir, root = path, path.parent
    else:
        raise DataError(f"{path}: not a data set folder: expected {path}/train/train.csv (competition layout) "
                        f"or {path}/train.csv. Pass the folder that holds train/ and eval/, or a CSV file "
                        f"with path and label columns")
    eval_dir = root / "eval" if (root / "eval").is_dir() and train_dir != root else None
    return Layout("competition", root, train_dir / "train.csv", train_dir / "images", eval_dir)


# ---------------------------------------------------------------- CSV checks
def column_problems(csv_path: Path, columns: Iterable[str], required: Iterable[str]) -> list[Problem]:
    """Missing columns (error, with close matches among the present ones) and extra columns (warning)."""
    columns, required = [str(c) for c in columns], list(required)
    out = []
    extra = [c for c in columns if c not in required]
    for col in required:
        if col in columns:
            continue
        close = difflib.get_close_matches(col, extra, n=1, cutoff=0.5) or \
            [c for c in extra if c.strip().lower() == col.lower()]
        hint = f" (found {close[0]!r}: rename it to {col!r})" if close else ""
        out.append(Problem(str(csv_path), f"missing column {col!r}{hint}. Expected columns: {', '.join(required)}"))
    for col in extra:
        close = difflib.get_close_matches(col, required, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close and close[0] not in columns else ""
        out.append(Problem(str(csv_path), f"extra column {col!r} is ignored{hint}", level="warning"))
    return out


def read_csv(csv_path: Path, **kwargs) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: file not found")
    try:
        return pd.read_csv(csv_path, dtype=str, keep_default_na=False, **kwargs)
    except Exception as exc:  # pandas' message carries the line
        raise DataError(f"{csv_path}: cannot read CSV: {exc}") from exc


def parse_gender(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """'male'/'female' (any case) or 0/1 -> codes, plus a mask of the bad values."""
    low = values.astype(str).str.strip().str.lower()
    codes = low.map({**GENDER_CODES, "0": 0, "1": 1})
    bad = codes.isna().to_numpy()
    return codes.fillna(-1).astype(np.int64).to_numpy(), bad


def parse_age(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Whole years within AGE_RANGE, plus a mask of the bad values."""
    num = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    bad = (num.isna() | (num != num.round()) | (num < AGE_RANGE[0]) | (num > AGE_RANGE[1])).to_numpy()
    return num.fillna(-1).round().astype(np.int64).to_numpy(), bad


def train_csv_problems(csv_path: Path, df: pd.DataFrame, images_dir: Path) -> list[Problem]:
    """Row-level problems of a competition train.csv (values and duplicates) in the columns present;
    missing columns are reported by :func:`column_problems`."""
    out = []
    ids = df["id"] if "id" in df.columns else pd.Series([f"(row {i + 1})" for i in range(len(df))])
    where = (lambda i: str(images_dir / df["path"].iat[i])) if "path" in df.columns else (lambda i: str(csv_path))
    if "gender" in df.columns:
        _, bad = parse_gender(df["gender"])
        for i in np.flatnonzero(bad):
            out.append(Problem(where(i), f"{csv_path.name} line {i + 2}: bad gender {df['gender'].iat[i]!r} for "
                                         f"id {ids.iat[i]!r}; use 'male' or 'female'", skippable=True))
    if "age" in df.columns:
        _, bad = parse_age(df["age"])
        for i in np.flatnonzero(bad):
            out.append(Problem(where(i), f"{csv_path.name} line {i + 2}: bad age {df['age'].iat[i]!r} for id "
                                         f"{ids.iat[i]!r}; use whole years {AGE_RANGE[0]}..{AGE_RANGE[1]} "
                                         f"(60 means 60+)", skippable=True))
    for col in ("id", "path"):
        if col not in df.columns:
            continue
        dup = df[col][df[col].duplicated()]
        for v in dup.unique()[:MAX_LISTED]:
            out.append(Problem(str(csv_path), f"duplicate {col} {v!r} in {csv_path.name}; list each person once"))
    if "path" in df.columns:
        for i in np.flatnonzero((df["path"].str.strip() == "").to_numpy()):
            out.append(Problem(str(csv_path), f"{csv_path.name} line {i + 2}: empty path for id {ids.iat[i]!r}"))
    return out


# ---------------------------------------------------------------- person folders
def list_person_photos(folder: Path) -> tuple[dict[str, Path], list[Path], list[str]]:
    """Photos of one person folder: ({stem: file}, unknown image-like files, duplicate stems).

    Hidden files (``._mask1.jpg``, ``.DS_Store``) are ignored.
    """
    found: dict[str, Path] = {}
    unknown, dups = [], []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        stem, ext = f.stem, f.suffix.lower()
        if stem in PHOTO_MASK and ext in IMAGE_EXTS:
            if stem in found:
                dups.append(stem)
            else:
                found[stem] = f
        else:
            unknown.append(f)
    return found, unknown, dups


def _under(path: Path, excluded: set[str]) -> bool:
    s = str(path)
    return s in excluded or str(path.parent) in excluded


# ---------------------------------------------------------------- loading
def load_dataset(path: str | Path, exclude: Iterable[str | Path] = ()) -> Dataset:
    """Read a data set (see module doc). ``exclude``: image files or person folders to leave out
    (the set :func:`ensemble_core.data.check.preflight` returns with ``skip_bad=True``).

    Raises :class:`DataError` naming file, field and value for anything that prevents building the
    sample table (missing columns, bad labels, missing person folders). Missing single photos are
    tolerated here; ``python -m ensemble_core check-data`` reports them.
    """
    layout = resolve_layout(path)
    excluded = {str(Path(p).resolve()) for p in exclude}
    if layout.kind == "csv":
        return _load_plain_csv(layout, excluded)
    train = _load_competition_train(layout, excluded)
    ev = _load_eval(layout.eval_dir) if layout.eval_dir is not None else None
    order, eval_skipped = None, []
    if ev is not None:
        order = ev["image_id"].astype(str).tolist()
        bad = ev["path"].isin(excluded).to_numpy()
        eval_skipped = ev["image_id"][bad].astype(str).tolist()
        ev = ev[~bad].reset_index(drop=True)
    return Dataset(train=train, eval=ev, root=layout.root, source="competition", skipped=sorted(excluded),
                   eval_skipped=eval_skipped, eval_order=order)


def _raise(problems: list[Problem], what: str) -> None:
    errors = [p for p in problems if p.level == "error"]
    if not errors:
        return
    shown = "\n".join(f"  - {p}" for p in errors[:MAX_LISTED])
    more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    raise DataError(f"{what}: {len(errors)} problem(s):\n{shown}{more}\n"
                    f"Fix them, or run `python -m ensemble_core check-data DIR` for the full list "
                    f"and train with {SKIP_FLAG} to leave bad people and images out")


def _load_competition_train(layout: Layout, excluded: set[str]) -> pd.DataFrame:
    csv_path = layout.train_csv
    df = read_csv(csv_path)
    _raise(column_problems(csv_path, df.columns, TRAIN_COLUMNS), f"cannot read {csv_path}")
    images_dir = layout.images_dir
    keep = np.array([not _under(images_dir / p / "x", excluded) for p in df["path"]], dtype=bool)
    df = df[keep].reset_index(drop=True)
    problems = train_csv_problems(csv_path, df, images_dir)
    if not images_dir.is_dir():
        problems.append(Problem(str(images_dir), "images folder missing; it must hold one folder per person "
                                                 "named as the 'path' column of train.csv"))
    _raise(problems, f"cannot read {csv_path}")
    genders, _ = parse_gender(df["gender"])
    ages, _ = parse_age(df["age"])
    rows, missing = [], []
    for pid, folder_name, g, a in zip(df["id"], df["path"], genders, ages):
        folder = images_dir / folder_name
        if not folder.is_dir():
            missing.append(Problem(str(folder), f"person folder missing (id {pid!r} in {csv_path.name}); "
                                                f"restore it or remove the row", skippable=True))
            continue
        photos, _, _ = list_person_photos(folder)
        for stem, f in photos.items():
            if str(f) in excluded:
                continue
            rows.append((f"{folder_name}/{f.name}", str(f), str(pid), PHOTO_MASK[stem], int(g), int(a)))
    _raise(missing, f"cannot read {images_dir}")
    if not rows:
        raise DataError(f"{images_dir}: no photos found (expected mask1..mask5, incorrect_mask, normal "
                        f"with extension {', '.join(IMAGE_EXTS)} in each person folder)")
    return _finish(pd.DataFrame(rows, columns=["image_id", "path", "person", "mask", "gender", "age"]))


def _finish(train: pd.DataFrame) -> pd.DataFrame:
    for col in ("mask", "gender", "age"):
        train[col] = train[col].astype(np.int64)
    train["label18"] = class_id(train["mask"], train["gender"], age_to_class(train["age"])).astype(np.int64)
    return train.reset_index(drop=True)


def _load_eval(eval_dir: Path) -> pd.DataFrame | None:
    info = eval_dir / "info.csv"
    if not info.is_file():
        return None
    df = read_csv(info)
    _raise(column_problems(info, df.columns, EVAL_COLUMNS), f"cannot read {info}")
    images = eval_dir / "images"
    return pd.DataFrame({"image_id": df["ImageID"].to_numpy(),
                         "path": [str(images / i) for i in df["ImageID"]]})


def _load_plain_csv(layout: Layout, excluded: set[str]) -> Dataset:
    csv_path = layout.train_csv
    df = read_csv(csv_path)
    cols = set(df.columns)
    if "label18" in cols:
        required = ["path", "label18"]
    else:
        required = ["path", "mask", "gender", "age"]
    problems = [p for p in column_problems(csv_path, df.columns, required) if p.level == "error"]
    if problems:
        _raise(problems + [Problem(str(csv_path), "a plain CSV needs 'path' and either 'label18' or "
                                                  "'mask','gender','age' columns")], f"cannot read {csv_path}")
    base = csv_path.parent
    paths = [str((base / p).resolve()) if not Path(p).is_absolute() else str(Path(p)) for p in df["path"]]
    keep = np.array([p not in excluded for p in paths])
    df, paths = df[keep].reset_index(drop=True), [p for p, k in zip(paths, keep) if k]
    problems = []
    if "label18" in cols:
        lab = pd.to_numeric(df["label18"].str.strip(), errors="coerce")
        bad = lab.isna() | (lab < 0) | (lab > 17) | (lab != lab.round())
        for i in np.flatnonzero(bad.to_numpy())[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"line {i + 2}: label18 {df['label18'].iat[i]!r} is not a "
                                                   f"class 0..17"))
        lab = lab.fillna(0).astype(np.int64).to_numpy()
        mask, gender, age_cls = lab // 6, (lab // 3) % 2, lab % 3
        age = np.asarray(AGE_CLASS_YEARS)[age_cls]
        if "age" in cols:
            age_years, bad_a = parse_age(df["age"])
            age = np.where(bad_a, age, age_years)
    else:
        mask = pd.to_numeric(df["mask"].str.strip(), errors="coerce")
        for i in np.flatnonzero((mask.isna() | ~mask.isin([0, 1, 2])).to_numpy())[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"line {i + 2}: mask {df['mask'].iat[i]!r} must be 0 (mask), "
                                                   f"1 (incorrect) or 2 (normal)"))
        mask = mask.fillna(0).astype(np.int64).to_numpy()
        gender, bad_g = parse_gender(df["gender"])
        for i in np.flatnonzero(bad_g)[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"line {i + 2}: gender {df['gender'].iat[i]!r} must be "
                                                   f"male/female or 0/1"))
        age, bad_a = parse_age(df["age"])
        for i in np.flatnonzero(bad_a)[:MAX_LISTED]:
            problems.append(Problem(str(csv_path), f"line {i + 2}: age {df['age'].iat[i]!r} must be whole years "
                                                   f"{AGE_RANGE[0]}..{AGE_RANGE[1]}"))
    _raise(problems, f"cannot read {csv_path}")
    image_ids = [str(Path(p).relative_to(base)) if Path(p).is_relative_to(base) else p for p in paths]
    person = df["person"].astype(str).to_numpy() if "person" in cols else np.array(image_ids)
    train = pd.DataFrame({"image_id": image_ids, "path": paths, "person": person,
                          "mask": mask, "gender": gender, "age": age})
    if train["image_id"].duplicated().any():
        dup = train["image_id"][train["image_id"].duplicated()].iloc[0]
        raise DataError(f"{csv_path}: path {dup!r} is listed twice; list each image once")
    return Dataset(train=_finish(train), eval=None, root=layout.root, source="csv", skipped=sorted(excluded))
