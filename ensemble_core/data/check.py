"""Preflight scan of a data set: ``python -m ensemble_core check-data DIR``.

Reports the number of people and photos and every problem with its path:
missing / extra CSV columns, missing person folders, missing or unknown photo
names, unreadable / truncated / empty images (JPEG end-of-image marker, PNG
IEND chunk, then a full decode), bad gender / age values, missing eval images.

:func:`preflight` checks a data set and raises :class:`DataError` listing the problems,
or with ``skip_bad=True`` returns the image files and person folders to leave out
(and writes them to ``report_path``). A run calls its parts (``check_data``,
``screen``, ``write_check_report``) separately, so that it writes nothing until every check passed.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ensemble_core.atomic import atomic_write_json
from ensemble_core.errors import DataError
from ensemble_core.data.layout import (EVAL_COLUMNS, IMAGE_EXTS, PHOTO_STEMS, SKIP_FLAG, TRAIN_COLUMNS, Problem,
                                       column_problems, list_person_photos, read_csv, resolve_layout,
                                       train_csv_problems)

JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
PNG_SIG, PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


@dataclass
class CheckReport:
    root: str
    n_people: int = 0
    n_photos: int = 0
    n_eval_photos: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def bad_paths(self) -> set[str]:
        """Image files and person folders whose problems are worked around by skipping them."""
        return {p.path for p in self.errors if p.skippable}

    def summary(self) -> str:
        head = (f"{self.root}: {self.n_people} people, {self.n_photos} photos"
                + (f", {self.n_eval_photos} eval photos" if self.n_eval_photos else "")
                + f" (scanned in {self.seconds:.1f} s)")
        if not self.problems:
            return head + "\nno problems found"
        lines = [head, f"{len(self.errors)} error(s), {len(self.warnings)} warning(s):"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"root": self.root, "n_people": self.n_people, "n_photos": self.n_photos,
                "n_eval_photos": self.n_eval_photos, "ok": self.ok, "seconds": round(self.seconds, 2),
                "problems": [vars(p) for p in self.problems]}


# ---------------------------------------------------------------- one image
def image_problem(path: str | Path, decode: bool = True) -> str | None:
    """Why ``path`` is not a usable image, or ``None``. Cheap marker checks first, then a full decode."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"unreadable file ({exc.strerror or exc})"
    if not data:
        return "empty file (0 bytes); re-export or remove the file"
    if data[:2] == JPEG_SOI:
        if JPEG_EOI not in data[-64:].rstrip(b"\x00\r\n \t"):  # tolerate padding after the marker
            return "truncated JPEG (no end-of-image marker FFD9); re-export or remove the file"
    elif data[:8] == PNG_SIG:
        if PNG_IEND not in data[-64:]:
            return "truncated PNG (no IEND chunk); re-export or remove the file"
    else:
        return (f"not a JPEG or PNG image (starts with {data[:8]!r}); replace it with the real photo or "
                f"remove the file")
    if decode:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None or img.size == 0:
            return "cannot be decoded (corrupt image data)"
        if min(img.shape[:2]) < 8:
            return f"image is only {img.shape[1]}x{img.shape[0]} pixels"
    return None


def image_problems(paths: list[str], decode: bool = True, num_threads: int | None = None) -> list[str | None]:
    """:func:`image_problem` of every path (in a thread pool), in order."""
    threads = num_threads or max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda p: image_problem(p, decode), paths, chunksize=64))


# ---------------------------------------------------------------- whole data set
def check_data(path: str | Path, decode: bool = True, num_threads: int | None = None) -> CheckReport:
    """Scan a data set (root, its train folder, or train.csv) and report every problem."""
    t0 = time.perf_counter()
    layout = resolve_layout(path)
    report = CheckReport(root=str(layout.root))
    if layout.kind != "competition":
        return _check_plain_csv(layout, report, decode, num_threads, t0)
    images: list[str] = []
    _check_train(layout, report, images)
    eval_images = _check_eval(layout, report)
    report.n_photos = len(images)
    report.n_eval_photos = len(eval_images)
    _check_images(images, report, decode, num_threads)
    _check_images(eval_images, report, decode, num_threads, EVAL_FIX)
    report.seconds = time.perf_counter() - t0
    return report


def _check_train(layout, report: CheckReport, images: list[str]) -> None:
    csv_path = layout.train_csv
    if not csv_path.is_file():
        report.problems.append(Problem(str(csv_path), "train.csv not found; the competition layout needs "
                                                      "train/train.csv with columns " + ",".join(TRAIN_COLUMNS)))
        return
    try:
        df = read_csv(csv_path)
    except DataError as exc:
        report.problems.append(Problem(str(csv_path), str(exc)))
        return
    report.problems += column_problems(csv_path, df.columns, TRAIN_COLUMNS)
    report.n_people = len(df)
    report.problems += train_csv_problems(csv_path, df, layout.images_dir)
    if "path" not in df.columns:
        return
    images_dir = layout.images_dir
    if not images_dir.is_dir():
        report.problems.append(Problem(str(images_dir), "images folder missing; it must hold one folder per "
                                                        "person named as the 'path' column of train.csv"))
        return
    ids = df["id"] if "id" in df.columns else df["path"]
    listed = set()
    for pid, folder_name in zip(ids, df["path"]):
        if not folder_name.strip():
            continue
        folder = images_dir / folder_name
        listed.add(folder_name)
        if not folder.is_dir():
            report.problems.append(Problem(str(folder), f"person folder missing (id {pid!r} in train.csv); "
                                                        f"restore it or remove the row", skippable=True))
            continue
        photos, unknown, dups = list_person_photos(folder)
        images.extend(str(f) for f in photos.values())
        missing = [s for s in PHOTO_STEMS if s not in photos]
        expected = f"expected {', '.join(PHOTO_STEMS)} with extension {'/'.join(IMAGE_EXTS)}"
        if missing and photos:  # tolerated: the person trains on the photos that are there
            report.problems.append(Problem(str(folder), f"missing photo(s) {', '.join(missing)} ({expected}); the "
                                                        f"person's other {len(photos)} photo(s) are used",
                                           level="warning"))
        elif missing:
            report.problems.append(Problem(str(folder), f"no photos in the person folder ({expected}); add them, "
                                                        f"or run with {SKIP_FLAG} to leave the person out",
                                           skippable=True))
        for f in unknown:
            report.problems.append(Problem(str(f), f"unknown photo name {f.name!r}; expected one of "
                                                   f"{', '.join(PHOTO_STEMS)} with extension "
                                                   f"{'/'.join(IMAGE_EXTS)}; rename or remove it",
                                           skippable=True))
        for stem in dups:
            report.problems.append(Problem(str(folder), f"photo {stem!r} appears twice (two extensions); "
                                                        f"keep one"))
    extra = sorted(d.name for d in images_dir.iterdir() if d.is_dir() and d.name not in listed
                   and not d.name.startswith("."))
    for name in extra[:20]:
        report.problems.append(Problem(str(images_dir / name), "folder not listed in train.csv is ignored",
                                       level="warning"))
    if len(extra) > 20:
        report.problems.append(Problem(str(images_dir), f"... and {len(extra) - 20} more unlisted folders",
                                       level="warning"))


def _check_eval(layout, report: CheckReport) -> list[str]:
    if layout.eval_dir is None:
        return []
    info = layout.eval_dir / "info.csv"
    if not info.is_file():
        report.problems.append(Problem(str(info), "eval/info.csv not found (columns ImageID,ans)", level="warning"))
        return []
    try:
        df = read_csv(info)
    except DataError as exc:
        report.problems.append(Problem(str(info), str(exc)))
        return []
    cols = column_problems(info, df.columns, EVAL_COLUMNS)
    report.problems += cols
    if "ImageID" not in df.columns:
        return []
    images_dir = layout.eval_dir / "images"
    out = []
    for image_id in df["ImageID"]:
        p = images_dir / image_id
        if not p.is_file():
            report.problems.append(Problem(str(p), f"eval image missing (ImageID {image_id!r} in {info}); put "
                                                   f"the file there, or run with {SKIP_FLAG} to give it the "
                                                   f"fallback class in submission.csv", skippable=True))
        else:
            out.append(str(p))
    return out


EVAL_FIX = (f"replace it with the real photo, or run with {SKIP_FLAG} to give it the fallback class in "
            f"submission.csv (every eval ImageID needs a row, so removing it does not help)")


def _check_images(paths: list[str], report: CheckReport, decode: bool, num_threads: int | None,
                  fix: str | None = None) -> None:
    """``fix`` replaces the per-file advice after ';' (eval images cannot simply be removed)."""
    for p, why in zip(paths, image_problems(paths, decode, num_threads)):
        if why:
            if fix is not None:
                why = f"{why.split(';')[0]}; {fix}"
            report.problems.append(Problem(p, why, skippable=True))


def _check_plain_csv(layout, report, decode, num_threads, t0) -> CheckReport:
    from ensemble_core.data.layout import load_dataset
    try:
        ds = load_dataset(layout.train_csv)
    except DataError as exc:
        report.problems.append(Problem(str(layout.train_csv), str(exc)))
        report.seconds = time.perf_counter() - t0
        return report
    report.n_people, report.n_photos = ds.n_people, len(ds.train)
    existing = []
    for p in ds.train["path"]:
        if Path(p).is_file():
            existing.append(p)
        else:
            report.problems.append(Problem(p, f"image listed in {layout.train_csv.name} not found", skippable=True))
    _check_images(existing, report, decode, num_threads)
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------- preflight
def screen(report: CheckReport, skip_bad: bool, source: str | Path | None = None, dataset: Any = None) -> set[str]:
    """The paths to leave out of ``report``'s data set, or :class:`DataError` listing what blocks training.

    Without ``skip_bad`` every error blocks; with it, errors tied to one image or one person folder (bad or
    missing files) are left out and only the others (a missing column, no train.csv, bad labels) block.
    Writes nothing. ``dataset``: the recipe's data layout ``{name, params}``, named in the check-data command the
    error suggests (another layout's folder read as the mask competition's gives misleading problems).
    """
    errors = report.errors
    if not errors:
        return set()
    blocking = errors if not skip_bad else [p for p in errors if not p.skippable]
    if blocking:
        shown = "\n".join(f"  - {p}" for p in blocking[:20])
        more = f"\n  ... and {len(blocking) - 20} more" if len(blocking) > 20 else ""
        n_skippable = sum(p.skippable for p in blocking)
        if skip_bad:
            hint = "fix them (these cannot be skipped)"
        elif n_skippable == len(blocking):
            hint = (f"fix them, or run with {SKIP_FLAG} to leave the bad images / people out of training "
                    f"(bad eval images then get the fallback class in submission.csv)")
        else:
            hint = (f"fix them; {SKIP_FLAG} leaves out bad images / people ({n_skippable} of these) but "
                    f"cannot work around the others")
        raise DataError(f"data check of {report.root} found {len(blocking)} problem(s):\n{shown}{more}\n"
                        f"Run `python -m ensemble_core check-data {source or report.root}{_layout_flags(dataset)}` "
                        f"for the full report; "
                        f"{hint}")
    return report.bad_paths()


def _layout_flags(dataset: Any) -> str:
    """`` --dataset NAME [--dataset-params JSON]`` for a layout other than the mask competition's."""
    if dataset is None:
        return ""
    from ensemble_core.registry import normalize_ref
    ref = normalize_ref(dataset)
    if ref["name"] == "mask_competition" and not ref.get("params"):
        return ""
    params = f" --dataset-params '{json.dumps(ref['params'])}'" if ref.get("params") else ""
    return f" --dataset {ref['name']}{params}"


def write_check_report(report: CheckReport, path: str | Path, skipped: Sequence[str] = ()) -> Path:
    """``data_check.json``: the whole report plus the paths left out."""
    data = report.to_dict()
    data["skipped"] = sorted(skipped)
    return atomic_write_json(path, data, indent=1)


def preflight(path: str | Path, skip_bad: bool = False, report_path: str | Path | None = None,
              decode: bool = True) -> set[str]:
    """Check a data set before training. Returns the paths to leave out (pass them to
    ``load_dataset(path, exclude=...)``); empty when all is well.

    Without ``skip_bad`` any error raises :class:`DataError` listing the problems.
    With ``skip_bad`` errors tied to one image or person folder are skipped;
    errors that cannot be skipped (a missing column, no train.csv) still raise.
    ``report_path`` (JSON) is written only when the check passes.
    """
    report = check_data(path, decode=decode)
    exclude = screen(report, skip_bad, path)
    if report_path is not None:
        write_check_report(report, report_path, exclude)
    return exclude
