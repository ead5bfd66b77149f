"""Deterministic synthetic data in the exact competition layout, small and fast.

    python -m ensemble_core.data.demo OUT_DIR [--people 90] [--eval-people 30] [--size 64 48]

Faces are drawn with OpenCV. Gender shows in hair length, face shape, brows
and lip colour (with exceptions); age in forehead wrinkles, crow's feet,
grey hair and skin tone, growing gradually with the years; the mask is drawn
over nose and mouth (``mask1..5``, five mask styles), below the nose
(``incorrect_mask``) or not at all (``normal``). Every photo gets its own pose,
light and noise. A marker file written last makes reruns skip generation.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ensemble_core.atomic import atomic_write, atomic_write_bytes, atomic_write_json
from ensemble_core.data.layout import PHOTO_MASK, PHOTO_STEMS
from ensemble_core.labels import age_to_class, class_id

MARKER = ".demo_complete"
BUILDING = ".ensemble_core_demo_building"   # written first, removed last: the folder is ours
RACES = ("Asian", "White", "Black", "Others")
SKIN = np.array([[196, 160, 130], [225, 190, 165], [120, 85, 60], [170, 130, 100], [235, 200, 180]], float)
HAIR = np.array([[25, 20, 18], [70, 45, 30], [120, 80, 40], [190, 160, 100], [40, 30, 25]], float)
GREY = np.array([205, 205, 200], float)
MASK_COLOURS = np.array([[235, 240, 245], [150, 200, 230], [30, 30, 35], [90, 120, 200], [200, 90, 90],
                         [230, 230, 200], [110, 160, 110]], float)
SCALE = 4  # draw at 4x and downsample for smooth edges


def _age_for(rng: np.random.Generator) -> int:
    cls = rng.choice(3, p=[0.42, 0.40, 0.18])
    return int(rng.integers(18, 30)) if cls == 0 else int(rng.integers(30, 60)) if cls == 1 else 60


def _person(rng: np.random.Generator) -> dict:
    gender = "female" if rng.random() < 0.6 else "male"
    age = _age_for(rng)
    female = gender == "female"
    # greying and wrinkles grow with age; a little individual variation
    grey = float(np.clip((age - 32) / 26 + rng.normal(0, 0.12), 0, 1))
    wrinkles = float(np.clip((age - 25) / 35 + rng.normal(0, 0.08), 0, 1))
    long_hair = rng.random() < (0.85 if female else 0.1)
    return {
        "gender": gender, "age": age, "race": RACES[int(rng.integers(len(RACES)))],
        "skin": SKIN[int(rng.integers(len(SKIN)))] * (1 - 0.12 * wrinkles) + rng.normal(0, 8, 3),
        "hair": HAIR[int(rng.integers(len(HAIR)))] * (1 - grey) + GREY * grey + rng.normal(0, 6, 3),
        "grey": grey, "wrinkles": wrinkles, "long_hair": long_hair,
        "face_w": (0.30 if female else 0.35) + rng.normal(0, 0.015),
        "face_h": 0.36 + rng.normal(0, 0.015),
        "lips": np.array([190, 60, 80], float) if female and rng.random() < 0.8 else np.array([150, 90, 85], float),
        "brow": 2 if female else 4,
        "background": rng.uniform(60, 230, 3),
    }


def _draw(p: dict, mask_state: str, mask_colour: np.ndarray, size: tuple[int, int],
          rng: np.random.Generator) -> np.ndarray:
    h, w = size[0] * SCALE, size[1] * SCALE
    # this photo's pose, light and noise, drawn first so that they do not depend on the mask state
    angle, zoom, shift = rng.uniform(-10, 10), rng.uniform(0.9, 1.1), rng.uniform(-0.06, 0.06, 2) * (w, h)
    gain, offset, tint = rng.uniform(0.8, 1.2), rng.uniform(-25, 25), rng.normal(0, 3, 3)
    noise = rng.normal(0, 6, (size[0], size[1], 3))
    img = np.empty((h, w, 3), np.float32)
    img[:] = p["background"] + rng.normal(0, 10, 3)
    cx, cy = w / 2, h * 0.48
    fw, fh = p["face_w"] * w * 1.3, p["face_h"] * h
    hair = tuple(float(v) for v in p["hair"])
    skin = tuple(float(v) for v in p["skin"])
    s = SCALE

    def pt(x, y):
        return int(round(x)), int(round(y))

    if p["long_hair"]:  # hair behind the face down to the shoulders
        cv2.ellipse(img, pt(cx, cy + 0.15 * fh), pt(fw * 1.35, fh * 1.35), 0, 0, 360, hair, -1, cv2.LINE_AA)
        cv2.rectangle(img, pt(cx - fw * 1.35, cy), pt(cx + fw * 1.35, h), hair, -1)
    # neck and shoulders
    cv2.rectangle(img, pt(cx - fw * 0.4, cy + fh * 0.8), pt(cx + fw * 0.4, h), skin, -1)
    cv2.ellipse(img, pt(cx, h), pt(w * 0.48, h * 0.12), 0, 180, 360, tuple(float(v) for v in p["background"] * 0.5),
                -1, cv2.LINE_AA)
    # face: men squarer (wider jaw)
    cv2.ellipse(img, pt(cx, cy), pt(fw, fh), 0, 0, 360, skin, -1, cv2.LINE_AA)
    if p["gender"] == "male":
        cv2.rectangle(img, pt(cx - fw * 0.85, cy), pt(cx + fw * 0.85, cy + fh * 0.7), skin, -1)
    # hair on top
    cv2.ellipse(img, pt(cx, cy - fh * 0.45), pt(fw * 1.05, fh * 0.6), 0, 180, 360, hair, -1, cv2.LINE_AA)
    # forehead wrinkles
    n_lines = int(round(p["wrinkles"] * 4))
    line_col = tuple(float(v) for v in p["skin"] * 0.6)
    for k in range(n_lines):
        y = cy - fh * (0.28 - 0.07 * k)
        cv2.ellipse(img, pt(cx, y + fh * 0.1), pt(fw * 0.5, fh * 0.1), 0, 200, 340, line_col, s, cv2.LINE_AA)
    # eyes, brows, crow's feet
    ey = cy - fh * 0.05
    for side in (-1, 1):
        ex = cx + side * fw * 0.42
        cv2.ellipse(img, pt(ex, ey), pt(fw * 0.16, fh * 0.07), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(img, pt(ex, ey), int(fh * 0.055), (40, 30, 25), -1, cv2.LINE_AA)
        cv2.line(img, pt(ex - fw * 0.18, ey - fh * 0.15), pt(ex + fw * 0.18, ey - fh * 0.17 + side * 0),
                 hair, p["brow"] * s // 2, cv2.LINE_AA)
        if p["wrinkles"] > 0.55:
            for d in (-1, 1):
                x0 = ex + side * fw * 0.22
                cv2.line(img, pt(x0, ey), pt(x0 + side * fw * 0.12, ey + d * fh * 0.05), line_col, s, cv2.LINE_AA)
    # nose and mouth
    ny, my = cy + fh * 0.28, cy + fh * 0.55
    cv2.line(img, pt(cx, cy + fh * 0.02), pt(cx - fw * 0.08, ny), line_col, s, cv2.LINE_AA)
    cv2.line(img, pt(cx - fw * 0.08, ny), pt(cx + fw * 0.06, ny), line_col, s, cv2.LINE_AA)
    cv2.ellipse(img, pt(cx, my), pt(fw * 0.28, fh * 0.07), 0, 0, 360, tuple(float(v) for v in p["lips"]), -1,
                cv2.LINE_AA)
    # the mask
    if mask_state != "normal":
        top = cy + fh * (0.08 if mask_state == "worn" else 0.38)
        poly = np.array([[cx - fw * 0.95, top + fh * 0.08], [cx, top - fh * 0.04], [cx + fw * 0.95, top + fh * 0.08],
                         [cx + fw * 0.8, cy + fh * 0.85], [cx, cy + fh * 1.02], [cx - fw * 0.8, cy + fh * 0.85]])
        colour = tuple(float(v) for v in np.clip(mask_colour + rng.normal(0, 8, 3), 0, 255))
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], colour, cv2.LINE_AA)
        strap = tuple(float(v) for v in np.clip(mask_colour * 0.8, 0, 255))
        for side in (-1, 1):
            cv2.line(img, pt(cx + side * fw * 0.95, top + fh * 0.08), pt(cx + side * fw * 1.1, ey), strap, s,
                     cv2.LINE_AA)
        if rng.random() < 0.5:  # pleats
            for k in (0.35, 0.6):
                y = top + (cy + fh * 0.9 - top) * k
                cv2.line(img, pt(cx - fw * 0.8, y), pt(cx + fw * 0.8, y), tuple(c * 0.85 for c in colour), s)
    # pose, light and noise
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += shift
    img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    img = img * gain + offset + tint + noise
    return np.clip(img, 0, 255).astype(np.uint8)


def _ext(rng: np.random.Generator) -> str:
    r = rng.random()
    return ".png" if r < 0.07 else ".jpeg" if r < 0.17 else ".JPG" if r < 0.2 else ".jpg"


def _write(path: Path, rgb: np.ndarray) -> None:
    png = path.suffix.lower() == ".png"
    ok, buf = cv2.imencode(".png" if png else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 6] if png else [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def _photos(p: dict, size, rng: np.random.Generator):
    colours = rng.permutation(len(MASK_COLOURS))
    for stem in PHOTO_STEMS:
        state = {0: "worn", 1: "incorrect", 2: "normal"}[PHOTO_MASK[stem]]
        yield stem, _draw(p, state, MASK_COLOURS[colours[PHOTO_STEMS.index(stem) % len(colours)]], size, rng)


def make_demo(out_dir: str | Path, n_people: int = 90, n_eval_people: int = 30,
              image_size: Sequence[int] = (64, 48), seed: int = 0) -> Path:
    """Write a synthetic data set in the competition layout to ``out_dir`` and return it.

    ``train/train.csv`` + ``train/images/<id>_<gender>_<race>_<age>/`` (7 photos, mixed
    extensions), ``eval/info.csv`` + ``eval/images/`` + ``eval/answers.csv``. Skipped when
    ``out_dir`` already holds a complete demo made with the same arguments.
    """
    out = Path(out_dir)
    params = {"n_people": int(n_people), "n_eval_people": int(n_eval_people),
              "image_size": [int(image_size[0]), int(image_size[1])], "seed": int(seed), "version": 1}
    marker, building = out / MARKER, out / BUILDING
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return out
        except ValueError:
            pass
    elif not building.is_file() and any((out / sub).exists() for sub in ("train", "eval")):
        from ensemble_core.errors import DataError
        raise DataError(f"{out} holds train/ or eval/ that make_demo did not write (no {MARKER}); it never "
                        f"replaces a data set it did not make. Choose an empty folder for the demo data")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(building, params)     # ours from here on: a killed build is rebuilt next time
    marker.unlink(missing_ok=True)
    for sub in ("train", "eval"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    size = tuple(params["image_size"])
    train_images = out / "train" / "images"
    eval_images = out / "eval" / "images"
    train_images.mkdir(parents=True)
    eval_images.mkdir(parents=True)
    rows, info, answers = [], [], []
    for n in range(n_people + n_eval_people):
        rng = np.random.default_rng([int(seed), n])
        p = _person(rng)
        pid = f"{n + 1:06d}"
        folder = f"{pid}_{p['gender']}_{p['race']}_{p['age']}"
        gender = 0 if p["gender"] == "male" else 1
        for k, (stem, img) in enumerate(_photos(p, size, rng)):
            if n < n_people:
                # every extension and case appears at least once
                ext = {(0, 6): ".png", (1, 1): ".jpeg", (2, 2): ".JPG"}.get((n, k)) or _ext(rng)
                d = train_images / folder
                d.mkdir(exist_ok=True)
                _write(d / f"{stem}{ext}", img)
            else:
                name = hashlib.sha1(f"{seed}/{folder}/{stem}".encode()).hexdigest()[:20] + ".jpg"
                _write(eval_images / name, img)
                info.append((name, 0))
                cls = class_id(PHOTO_MASK[stem], gender, age_to_class(p["age"]))
                answers.append((name, int(cls)))
        if n < n_people:
            rows.append((pid, p["gender"], p["race"], p["age"], folder))
    _write_csv(out / "train" / "train.csv", ["id", "gender", "race", "age", "path"], rows)
    _write_csv(out / "eval" / "info.csv", ["ImageID", "ans"], sorted(info))
    _write_csv(out / "eval" / "answers.csv", ["ImageID", "ans"], sorted(answers))
    atomic_write_json(marker, params)
    building.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------- the other layouts
IMAGE_FOLDER_CLASSES = ("bare_man", "bare_woman", "masked_man", "masked_woman")
CSV_FACTORS = {"mask": ["mask", "incorrect", "normal"], "gender": ["male", "female"]}


def _claim(out: Path, params: dict, subs: Sequence[str]) -> bool:
    """True when ``out`` already holds this demo; else makes it ours (removing a half-built one)."""
    marker, building = out / MARKER, out / BUILDING
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return True
        except ValueError:
            pass
    elif not building.is_file() and any((out / sub).exists() for sub in subs):
        from ensemble_core.errors import DataError
        raise DataError(f"{out} holds {', '.join(subs)} that the demo maker did not write (no {MARKER}); it never "
                        f"replaces a data set it did not make. Choose an empty folder for the demo data")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(building, params)
    marker.unlink(missing_ok=True)
    for sub in subs:
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
        elif (out / sub).exists():
            (out / sub).unlink()
    return False


def _done(out: Path, params: dict) -> Path:
    atomic_write_json(out / MARKER, params)
    (out / BUILDING).unlink(missing_ok=True)
    return out


def make_image_folder_demo(out_dir: str | Path, n_people: int = 40, n_eval_people: int = 10,
                           image_size: Sequence[int] = (48, 40), seed: int = 0) -> Path:
    """A tiny ImageFolder data set: ``train/<class>/<image>.jpg`` for the 4 classes
    :data:`IMAGE_FOLDER_CLASSES` (mask worn or not x gender; two photos per person, one of each) and
    ``eval/<image>.jpg`` (flat); ``eval_answers.csv`` (``image,label``) beside them, outside ``eval/``."""
    out = Path(out_dir)
    params = {"layout": "image_folder", "n_people": int(n_people), "n_eval_people": int(n_eval_people),
              "image_size": [int(image_size[0]), int(image_size[1])], "seed": int(seed), "version": 1}
    if _claim(out, params, ("train", "eval", "eval_answers.csv")):
        return out
    size = tuple(params["image_size"])
    for c in IMAGE_FOLDER_CLASSES:
        (out / "train" / c).mkdir(parents=True)
    (out / "eval").mkdir(parents=True)
    answers = []
    for n in range(n_people + n_eval_people):
        rng = np.random.default_rng([int(seed), 1000 + n])
        p = _person(rng)
        for stem, img in _photos(p, size, rng):
            if stem not in ("mask1", "normal"):
                continue
            cls = f"{'masked' if stem == 'mask1' else 'bare'}_{'man' if p['gender'] == 'male' else 'woman'}"
            name = f"p{n + 1:04d}_{stem}.jpg"
            if n < n_people:
                _write(out / "train" / cls / name, img)
            else:
                _write(out / "eval" / name, img)
                answers.append((name, cls))
    _write_csv(out / "eval_answers.csv", ["image", "label"], sorted(answers))
    return _done(out, params)


def make_csv_demo(out_dir: str | Path, n_people: int = 30, n_eval_people: int = 8,
                  image_size: Sequence[int] = (48, 40), seed: int = 0) -> Path:
    """A tiny two-factor CSV data set: ``train.csv`` (``image,mask,gender,person``; class names of
    :data:`CSV_FACTORS`, 7 photos per person), ``images/``, ``eval/<image>.jpg`` (flat) and
    ``eval_answers.csv`` (``image,label``, the class names ``mask/gender`` as the default submission)."""
    out = Path(out_dir)
    params = {"layout": "csv", "n_people": int(n_people), "n_eval_people": int(n_eval_people),
              "image_size": [int(image_size[0]), int(image_size[1])], "seed": int(seed), "version": 2}
    if _claim(out, params, ("train.csv", "images", "eval", "eval_answers.csv")):
        return out
    size = tuple(params["image_size"])
    (out / "images").mkdir(parents=True)
    (out / "eval").mkdir(parents=True)
    rows, answers = [], []
    for n in range(n_people + n_eval_people):
        rng = np.random.default_rng([int(seed), 2000 + n])
        p = _person(rng)
        person = f"p{n + 1:04d}"
        for stem, img in _photos(p, size, rng):
            mask = CSV_FACTORS["mask"][PHOTO_MASK[stem]]
            name = f"{person}_{stem}.jpg"
            if n < n_people:
                _write(out / "images" / name, img)
                rows.append((f"images/{name}", mask, p["gender"], person))
            else:
                _write(out / "eval" / name, img)
                answers.append((name, f"{mask}/{p['gender']}"))
    _write_csv(out / "train.csv", ["image", "mask", "gender", "person"], rows)
    _write_csv(out / "eval_answers.csv", ["image", "label"], sorted(answers))
    return _done(out, params)


# the recipe's dataset params that read each demo
DEMO_DATASETS = {
    "mask_competition": {"name": "mask_competition"},
    "image_folder": {"name": "image_folder"},
    "csv": {"name": "csv", "params": {"factors": CSV_FACTORS, "group_column": "person"}},
}


def make_layout_demo(layout: str, out_dir: str | Path) -> Path:
    """The demo data of one layout (``mask_competition``, ``image_folder`` or ``csv``)."""
    makers = {"mask_competition": make_demo, "image_folder": make_image_folder_demo, "csv": make_csv_demo}
    if layout not in makers:
        from ensemble_core.errors import DataError
        raise DataError(f"no demo data for dataset {layout!r}; demo layouts: {', '.join(makers)}")
    return makers[layout](out_dir)


def _write_csv(path: Path, header, rows) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([header] + list(rows))
    atomic_write(path, write)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble_core.data.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--people", type=int, default=90)
    parser.add_argument("--eval-people", type=int, default=30)
    parser.add_argument("--size", type=int, nargs=2, default=(64, 48), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", default="mask_competition", choices=sorted(DEMO_DATASETS),
                        help="mask_competition (default), image_folder (4 classes) or csv (two factors)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.layout != "mask_competition":
        out = make_layout_demo(args.layout, args.out_dir)
        print(f"{args.layout} demo data in {out}")
        return 0
    out = make_demo(args.out_dir, args.people, args.eval_people, args.size, args.seed)
    print(f"demo data in {out} ({args.people} train people, {args.eval_people} eval people, "
          f"{args.size[0]}x{args.size[1]} h x w)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
