"""Helpers for the data tests: a writable copy of the demo data set."""
from __future__ import annotations

import shutil
from pathlib import Path

# small enough to build in about a second; both genders and every age class appear
DEMO_KWARGS = dict(n_people=24, n_eval_people=6, image_size=(32, 24), seed=0)


def copy_demo(demo_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(demo_dir, dst)
    return dst


def tree_state(root: Path) -> list:
    """(relative path, is folder, size, mtime) of everything under ``root``: changes when anything is rewritten."""
    return sorted((str(p.relative_to(root)), p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


def first_person_folder(root: Path) -> Path:
    return sorted((root / "train" / "images").iterdir())[0]


def photo(folder: Path, stem: str) -> Path:
    return next(f for f in folder.iterdir() if f.stem == stem)


def first_jpeg(root: Path) -> Path:
    for folder in sorted((root / "train" / "images").iterdir()):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in (".jpg", ".jpeg"):
                return f
    raise AssertionError("no JPEG in demo data")
