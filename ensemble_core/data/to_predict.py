"""The images ``python -m ensemble_core predict`` is given: a folder of images, a data set's eval layout, or a CSV
of paths, read into one table (``image_id``, ``path``) in the order the submission lists them.

- a CSV file: one row per image; the column ``path``, ``image``, ``ImageID``, ``image_id``, ``file`` or
  ``filename`` (the first there, or the data layout's image column, or a CSV's only column) holds the image's
  path, relative to the CSV's folder (``ImageID`` of an ``info.csv``: relative to its ``images/`` folder, the mask
  competition's eval layout); the value is the image's id in submission.csv;
- a folder with ``info.csv`` (and ``images/``): the mask competition's eval folder, read as that CSV;
- a data set's folder with an ``eval/`` folder (or the csv layout's ``eval_csv``): its eval images, read as above;
- any other folder: the images directly in it (.jpg/.jpeg/.png), in name order, each named by its file name
  (what the ``image_folder`` and ``csv`` layouts do with ``DIR/eval/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ensemble_core.data.layout import IMAGE_EXTS, read_csv
from ensemble_core.errors import DataError

ID_COLUMNS = ("path", "image", "ImageID", "image_id", "file", "filename")


@dataclass
class ImagesToPredict:
    table: pd.DataFrame        # image_id, path (absolute), one row per listed image, in submission order
    source: str                # what was read, for the report: "eval/info.csv of /data (2100 images)"
    answers: Path | None = None    # eval/answers.csv beside an info.csv (its figures are reported only)


def _is_image(f: Path) -> bool:
    return f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTS


def _from_csv(csv_path: Path, column: str | None = None, base: Path | None = None) -> ImagesToPredict:
    df = read_csv(csv_path)
    if column is None:
        column = next((c for c in ID_COLUMNS if c in df.columns), None)
        if column is None and len(df.columns) == 1:
            column = df.columns[0]
    if column is None or column not in df.columns:
        raise DataError(f"{csv_path}: no image column; name the column of image paths one of "
                        f"{', '.join(ID_COLUMNS)} (it has {', '.join(map(str, df.columns)) or 'no columns'})")
    values = df[column].str.strip()
    empty = values.index[values == ""].tolist()
    if empty:
        raise DataError(f"{csv_path} line {empty[0] + 2}: empty {column!r}; every row names one image")
    if base is None:
        images = csv_path.parent / "images"
        base = images if column == "ImageID" and images.is_dir() else csv_path.parent
    paths = [str(Path(v) if Path(v).is_absolute() else (base / v).resolve()) for v in values]
    table = pd.DataFrame({"image_id": values.to_numpy(), "path": paths})
    answers = csv_path.parent / "answers.csv"
    return ImagesToPredict(table, f"{csv_path} (column {column!r}, {len(table)} images)",
                           answers if csv_path.name == "info.csv" and answers.is_file() else None)


def _from_folder(folder: Path) -> ImagesToPredict:
    files = sorted(f for f in folder.iterdir() if _is_image(f))
    if not files:
        nested = any(p.is_dir() for p in folder.iterdir())
        raise DataError(f"{folder} holds no images ({'/'.join(IMAGE_EXTS)}) directly"
                        + (" (only folders)" if nested else "") + "; pass a folder of images, a data set's folder "
                        "with eval/, an eval folder with info.csv, or a CSV of image paths")
    table = pd.DataFrame({"image_id": [f.name for f in files], "path": [str(f.resolve()) for f in files]})
    return ImagesToPredict(table, f"{folder} ({len(table)} images)")


def images_to_predict(path: str | Path, layout=None) -> ImagesToPredict:
    """The images at ``path`` (see the module doc); ``layout``: the data layout whose eval conventions apply (its
    ``eval_csv`` / image column). A path that is none of these, or lists one id twice, raises :class:`DataError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"images {str(path)!r} not found; pass a folder of images, a data set's folder, or a CSV "
                        f"of image paths")
    eval_csv = getattr(layout, "eval_csv", None)
    column = getattr(layout, "eval_image_column", None)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"images {path}: a single file must be a CSV of image paths (or pass its folder)")
        found = _from_csv(path.resolve(), column if column and column in read_csv(path).columns else None)
    elif eval_csv and (path / eval_csv).is_file():
        base = getattr(layout, "eval_images_dir", None)
        found = _from_csv((path / eval_csv).resolve(), column, (path / base).resolve() if base else None)
    else:
        folder = path / "eval" if (path / "eval").is_dir() else path
        found = _from_csv((folder / "info.csv").resolve()) if (folder / "info.csv").is_file() else \
            _from_folder(folder)
    dup = found.table["image_id"][found.table["image_id"].duplicated()]
    if len(dup):
        raise DataError(f"{found.source}: image id {dup.iloc[0]!r} is listed twice ({len(dup)} repeated); list "
                        f"each image once")
    return found
