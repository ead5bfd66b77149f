"""Data layouts as plugins: image_folder and csv read, check and fail with one clear line; mask_competition
reads exactly as before; the demo maker writes a tiny set of each."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers_generic import make_csv_set, make_image_folder

from ensemble_core.data.formats import build_layout
from ensemble_core.data.layout import load_dataset
from ensemble_core.errors import DataError
from ensemble_core.manager import get_registry

REG = get_registry()


def layout(name, **params):
    return build_layout(REG, {"name": name, "params": params})


def test_the_dataset_kind_lists_the_three_layouts():
    assert {"mask_competition", "image_folder", "csv"} <= set(REG["dataset"].names())


def test_image_folder_reads_four_classes(tmp_path):
    root = make_image_folder(tmp_path / "if")
    ds = layout("image_folder").load(root)
    assert ds.label_space.class_names() == ["bare_man", "bare_woman", "masked_man", "masked_woman"]
    assert set(ds.train.columns) >= {"image_id", "path", "person", "label", "class_id"}
    assert ds.train["label"].nunique() == 4 and (ds.train["label"] == ds.train["class_id"]).all()
    assert ds.eval is not None and len(ds.eval) == len(ds.eval_order) > 0
    assert layout("image_folder").check(root).ok


def test_image_folder_class_folder_without_images_is_one_line(tmp_path):
    root = make_image_folder(tmp_path / "if")
    (root / "train" / "zebra").mkdir()
    (root / "train" / "zebra" / "notes.txt").write_text("x")
    report = layout("image_folder").check(root)
    assert [str(p) for p in report.errors] == [
        f"{root / 'train' / 'zebra'}: class folder 'zebra' has no images (.jpg/.jpeg/.png); add its images or "
        f"remove the folder"]
    with pytest.raises(DataError) as err:
        layout("image_folder").load(root)
    assert "\n" not in str(err.value) and "class folder 'zebra' has no images" in str(err.value)


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_image_folder_without_eval_images_is_one_line(tmp_path, how):
    root = make_image_folder(tmp_path / "if")
    shutil.rmtree(root / "eval")
    if how == "empty":
        (root / "eval").mkdir()
    with pytest.raises(DataError) as err:
        layout("image_folder").load(root)
    msg = str(err.value)
    assert "\n" not in msg and str(root / "eval") in msg
    assert ("folder missing" if how == "missing" else "has no images") in msg
    assert "needs the images to predict directly in" in msg
    assert not layout("image_folder").check(root).ok


def test_csv_reads_two_factors_with_groups(tmp_path):
    root = make_csv_set(tmp_path / "csv")
    lay = layout("csv", factors={"mask": ["mask", "incorrect", "normal"], "gender": ["male", "female"]},
                 group_column="person")
    ds = lay.load(root)
    assert ds.label_space.n_classes == 6 and ds.label_space.class_names()[1] == "mask/female"
    assert ds.train["person"].nunique() < len(ds.train)             # photos grouped by person
    raw = pd.read_csv(root / "train.csv")
    assert ds.train["mask"].tolist() == raw["mask"].map({"mask": 0, "incorrect": 1, "normal": 2}).tolist()
    assert (ds.train["class_id"] == ds.train["mask"] * 2 + ds.train["gender"]).all()
    inferred = layout("csv").load(root)                              # factors and group column from the CSV
    assert inferred.label_space.factor_names == ("mask", "gender") and inferred.train["person"].nunique() < len(ds.train)
    assert lay.check(root).ok


def test_csv_value_outside_the_declared_classes_names_the_row(tmp_path):
    root = make_csv_set(tmp_path / "csv")
    df = pd.read_csv(root / "train.csv", dtype=str)
    df.loc[3, "mask"] = "visor"
    df.to_csv(root / "train.csv", index=False)
    lay = layout("csv", factors={"mask": ["mask", "incorrect", "normal"], "gender": ["male", "female"]})
    with pytest.raises(DataError) as err:
        lay.load(root)
    msg = str(err.value)
    assert "\n" not in msg
    assert (f"train.csv line 5 (image {df.loc[3, 'image']!r}): mask 'visor' is not one of the declared classes "
            f"mask, incorrect, normal") in msg
    assert not lay.check(root).ok


def test_csv_layout_with_colliding_factor_names_is_one_line():
    with pytest.raises(DataError, match="factor names collide: 'Colour' and 'colour'"):
        layout("csv", factors=[["Colour", ["r"]], ["colour", ["g"]]])


def test_mask_competition_layout_reads_as_load_dataset(demo_dir):
    ds = layout("mask_competition").load(demo_dir)
    old = load_dataset(demo_dir)
    pd.testing.assert_frame_equal(ds.train, old.train)
    assert ds.label_space.name == "mask_status" and ds.eval_order == old.eval_order


def test_check_data_takes_dataset(tmp_path):
    root = make_image_folder(tmp_path / "if")
    shutil.rmtree(root / "eval")
    out = subprocess.run([sys.executable, "-m", "ensemble_core", "check-data", str(root), "--dataset", "image_folder",
                          "--no-decode"], capture_output=True, text=True)
    assert out.returncode == 1 and "folder missing" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ensemble_core", "check-data", str(root), "--dataset", "imagefolder"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "Did you mean: 'image_folder'" in out.stderr


def test_demo_makes_an_image_folder_and_a_csv_set(tmp_path):
    from ensemble_core.data.demo import make_csv_demo, make_image_folder_demo
    a = make_image_folder_demo(tmp_path / "a", n_people=8, n_eval_people=2)
    assert sorted(p.name for p in (a / "train").iterdir()) == ["bare_man", "bare_woman", "masked_man",
                                                              "masked_woman"]
    assert len(list((a / "eval").iterdir())) == 4
    b = make_csv_demo(tmp_path / "b", n_people=4, n_eval_people=1)
    df = pd.read_csv(b / "train.csv")
    assert list(df.columns) == ["image", "mask", "gender", "person"] and len(df) == 28
    assert np.all([(b / p).is_file() for p in df["image"]])
