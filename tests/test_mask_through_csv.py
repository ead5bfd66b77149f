"""The mask competition read through the ``csv`` layout (one row per photo: mask, gender and age-bin class
names, the person as the group; label space mask_status) gives the same sample table, the same splits and
the same submission as through ``mask_competition``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers_generic import SeededExecutor, mask_layout_as_csv
from helpers_pipeline import TINY, load_recipe_module

from ensemble_core.data.formats import build_layout
from ensemble_core.data.splits import plan_splits
from ensemble_core.labels import age_to_class
from ensemble_core.manager import get_registry
from ensemble_core.pipeline import run_recipe


def test_csv_reads_the_mask_competition_as_mask_competition_does(demo_dir, tmp_path):
    reg = get_registry()
    csv_dir, ref = mask_layout_as_csv(demo_dir, tmp_path / "as_csv")
    a = build_layout(reg, "mask_competition").load(demo_dir)
    b = build_layout(reg, ref).load(csv_dir)
    for col in ("image_id", "path", "person", "mask", "gender", "label18"):
        assert a.train[col].astype(str).tolist() == b.train[col].astype(str).tolist(), col
    assert (age_to_class(a.train["age"]) == age_to_class(b.train["age"])).all()
    pd.testing.assert_frame_equal(a.eval, b.eval)
    assert a.eval_order == b.eval_order
    for split in ({"name": "shuffle", "params": {"n_splits": 3, "val_fraction": 0.2}},
                  {"name": "kfold", "params": {"n_splits": 3}}):
        sa, _ = plan_splits(a.train, split, 42, registry=reg)
        sb, _ = plan_splits(b.train, split, 42, registry=reg)
        assert all(np.array_equal(x, y) for pa, pb in zip(sa, sb) for x, y in zip(pa, pb))


def test_the_seed_recipe_gives_the_same_submission_through_csv(demo_dir, tmp_path):
    csv_dir, ref = mask_layout_as_csv(demo_dir, tmp_path / "as_csv")
    recipe = load_recipe_module("full").build(TINY)
    a = run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "mask", executor=SeededExecutor(), quiet=True)
    b = run_recipe({**recipe, "dataset": ref}, data_dir=csv_dir, out_dir=tmp_path / "csv",
                   executor=SeededExecutor(), quiet=True)
    assert a.submission.read_bytes() == b.submission.read_bytes()
    assert (tmp_path / "mask" / "splits.json").is_file() and (tmp_path / "csv" / "splits.json").is_file()
    assert sorted(p.name for p in (tmp_path / "mask" / "members").iterdir()) == \
        sorted(p.name for p in (tmp_path / "csv" / "members").iterdir())
