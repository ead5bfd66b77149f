"""recipes/generic.py on data sets that are not the mask competition: a 4-class ImageFolder tree (through
``fire``, from outside the repository, as a user would) and a two-factor CSV set; each run ends in
submission.csv, metrics.json and report.md with the data set's class names."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from helpers_generic import IMAGE_SIZE, make_csv_set, make_image_folder
from helpers_pipeline import load_recipe_module
from helpers_proc import SUBPROCESS_DEADLINE_S

from ensemble_core.pipeline import recompute

REPO = Path(__file__).resolve().parents[1]
TINY = [f"--defaults.load_size=[{IMAGE_SIZE[0]},{IMAGE_SIZE[1]}]",
        f"--defaults.image_size=[{IMAGE_SIZE[0]},{IMAGE_SIZE[1]}]", "--defaults.epochs=1",
        "--defaults.batch_size=16", "--tasks.0.backbones=[test_resnet]", "--preset", "small"]
CLASSES = ["bare_man", "bare_woman", "masked_man", "masked_woman"]


def test_fire_generic_on_an_image_folder_tree(tmp_path):
    data = make_image_folder(tmp_path / "my_images")
    out = tmp_path / "run"
    fire = Path(sys.executable).with_name("fire")
    cmd = [str(fire) if fire.exists() else sys.executable, *([] if fire.exists() else ["-m", "fire"]),
           str(REPO / "recipes" / "generic.py"), "run", "--dataset", "image_folder", "--data_dir", str(data),
           "--out_dir", str(out), "--quiet", *TINY]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["image", "label"]
    assert sorted(sub["image"]) == sorted(p.name for p in (data / "eval").iterdir())
    assert set(sub["label"]) <= set(CLASSES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["oof"]["per_class_f1"]) == CLASSES
    assert metrics["label_space"]["factors"] == {"label": CLASSES}
    report = (out / "report.md").read_text()
    assert "macro F1 (4 classes)" in report and all(c in report for c in CLASSES) and "Against the seed" not in report
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["dataset"] == "image_folder" and recipe["tasks"][0]["task"] == "joint"


def test_generic_on_a_two_factor_csv_set(tmp_path):
    data = make_csv_set(tmp_path / "products")
    generic = load_recipe_module("generic")
    flags = {"defaults.load_size": list(IMAGE_SIZE), "defaults.image_size": list(IMAGE_SIZE), "defaults.epochs": 1,
             "defaults.batch_size": 16, "tasks.0.backbones": ["test_resnet"]}
    out = tmp_path / "run"
    result = generic.run(data_dir=str(data), out_dir=str(out), preset="small", quiet=True, dataset="csv", **flags)
    assert Path(result["submission"]).name == "submission.csv"
    names = [f"{m}/{g}" for m in ("incorrect", "mask", "normal") for g in ("female", "male")]   # sorted values
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["image", "label"] and set(sub["label"]) <= set(names)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["oof"]["per_class_f1"]) == names
    assert set(metrics["oof"]["factor_accuracy"]) == {"mask", "gender"}
    assert "6 classes" in (out / "report.md").read_text()
    splits = json.loads((out / "splits.json").read_text())
    assert splits["n_persons"] == pd.read_csv(data / "train.csv")["person"].nunique()   # group folds over people
    before = (out / "submission.csv").read_bytes()
    recompute(out, quiet=True)                                   # `ensemble` reads the layout from recipe.json
    assert (out / "submission.csv").read_bytes() == before
