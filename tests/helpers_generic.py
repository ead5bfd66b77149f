"""Helpers for the tests of other data layouts: a tiny 4-class ImageFolder tree and a two-factor CSV set."""
from __future__ import annotations

from pathlib import Path

from ensemble_core.data.demo import make_csv_demo, make_image_folder_demo

IMAGE_SIZE = (32, 28)


def make_image_folder(root: Path, n_people: int = 16, n_eval_people: int = 4) -> Path:
    """``root/train/<class>/<img>.jpg`` for 4 classes (2 photos per person, one masked, one bare) and
    ``root/eval/<img>.jpg``: what a user's ImageFolder tree looks like."""
    return make_image_folder_demo(root, n_people=n_people, n_eval_people=n_eval_people, image_size=IMAGE_SIZE)


def make_csv_set(root: Path, n_people: int = 8, n_eval_people: int = 2) -> Path:
    """``root/train.csv`` (image, mask, gender, person), ``root/images/``, ``root/eval/<img>.jpg``."""
    return make_csv_demo(root, n_people=n_people, n_eval_people=n_eval_people, image_size=IMAGE_SIZE)
