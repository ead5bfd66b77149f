"""`compare`: two tiny run folders side by side (table, CSV, PNG), globs, and folders that are not runs."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ensemble_core.cli import main
from helpers_runs import tiny_recipe
from helpers_train import single_torch_thread  # noqa: F401 (autouse fixture)

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def two_runs(demo_dir, tmp_path_factory):
    from ensemble_core.pipeline import run_recipe
    root = tmp_path_factory.mktemp("runs")
    run_recipe(tiny_recipe(), data_dir=demo_dir, out_dir=root / "adamw", quiet=True, preset="tiny")
    run_recipe(tiny_recipe(**{"defaults.optimizer": {"name": "lion", "params": {"lr": 3e-4}},
                              "defaults.scheduler": "timm_cosine", "voter": "geometric_mean"}),
               data_dir=demo_dir, out_dir=root / "lion", quiet=True, preset="tiny")
    (root / "notes").mkdir()                                   # not a run folder
    shutil.copytree(demo_dir, root / "demo-data")              # a data folder, not a run folder
    return root


def test_compare_two_runs_table_csv_and_png(two_runs, demo_dir, tmp_path, capsys):
    import json
    out = tmp_path / "cmp"
    rc = main(["compare", str(two_runs / "*"), "--answers", str(demo_dir / "eval" / "answers.csv"),
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # the two non-run folders are named and skipped
    assert f"skipping {two_runs / 'notes'}: is not a run folder" in captured.err
    assert f"skipping {two_runs / 'demo-data'}: is not a run folder" in captured.err
    table = [line for line in captured.out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| run | recipe | preset | members |") and len(table) == 3
    frame = pd.read_csv(out / "compare.csv")
    assert sorted(frame["run"]) == ["adamw", "lion"]
    for name in ("adamw", "lion"):
        row = frame.set_index("run").loc[name]
        metrics = json.loads((two_runs / name / "metrics.json").read_text())
        # the honest figure the run reports, not a recomputation
        assert row["oof_macro_f1"] == pytest.approx(metrics["oof"]["macro_f1"])
        assert row["mask_acc"] == pytest.approx(metrics["oof"]["factor_accuracy"]["mask"])
        assert row["members_total"] == 1 and row["members_trained"] == 1 and row["members_reused"] == 0
        assert row["backbones"] == "test_efficientnet" and row["device"] == "cpu" and row["preset"] == "tiny"
        assert row["decision"] == "argmax" and row["wall_seconds"] > 0
        assert 0.0 <= row["eval_macro_f1"] <= 1.0
        first = next(iter(metrics["oof"]["per_class_f1"]))
        assert row[f"f1_00_{first}"] == pytest.approx(metrics["oof"]["per_class_f1"][first])
    assert set(frame["voter"]) == {"soft", "geometric_mean"}
    assert list(frame["oof_macro_f1"]) == sorted(frame["oof_macro_f1"], reverse=True)   # best first
    per_class_cols = [c for c in frame.columns if c.startswith("f1_")]
    assert len(per_class_cols) == 18
    png = (out / "per_class_f1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (out / "compare.md").read_text().splitlines()[0] == table[0]


def test_compare_reads_a_decision_field_when_the_run_has_one(two_runs, tmp_path, capsys):
    import json
    copy = tmp_path / "with-decision"
    shutil.copytree(two_runs / "adamw", copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["decision"] = {"name": "class_bias", "params": {"bias": [0.1]}}
    (copy / "metrics.json").write_text(json.dumps(metrics))
    assert main(["compare", str(copy), str(two_runs / "lion")]) == 0
    out = capsys.readouterr().out
    assert 'class_bias {"bias": [0.1]}' in out and "argmax" in out


def test_compare_without_any_run_folder_is_one_clear_error(two_runs, capsys):
    rc = main(["compare", str(two_runs / "notes"), str(two_runs / "missing")])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"skipping {two_runs / 'missing'}: does not exist" in err
    assert "error: no run folder to compare" in err and "Traceback" not in err


def test_compare_per_class_values_match_metrics(two_runs):
    from ensemble_core.compare import compare
    from ensemble_core.labels import class_names
    result = compare([two_runs / "adamw", two_runs / "lion"], warn=lambda _msg: None)
    for row in result["rows"]:
        assert list(row.per_class_f1) == class_names()
        assert np.isfinite(list(row.per_class_f1.values())).all()


def test_compare_shows_the_applied_decision_and_its_cross_fitted_figure(two_runs, tmp_path, capsys):
    import json
    rows = {}
    for name, kept in (("applied", False), ("kept", True)):
        copy = tmp_path / name
        shutil.copytree(two_runs / "adamw", copy)
        metrics = json.loads((copy / "metrics.json").read_text())
        metrics["decision"] = {"requested": {"name": "prior_power", "params": {}}, "kept_argmax": kept,
                               "crossfit_macro_f1": 0.4321, "argmax_macro_f1": 0.4}
        (copy / "metrics.json").write_text(json.dumps(metrics))
        rows[name] = metrics["oof"]["macro_f1"]
    assert main(["compare", str(tmp_path / "applied"), str(tmp_path / "kept"), "--out", str(tmp_path / "o")]) == 0
    frame = pd.read_csv(tmp_path / "o" / "compare.csv").set_index("run")
    assert frame.loc["applied", "decision"] == "prior_power"
    assert frame.loc["applied", "oof_macro_f1"] == pytest.approx(0.4321)      # the cross-fitted figure
    assert frame.loc["kept", "decision"] == "prior_power -> kept argmax"
    assert frame.loc["kept", "oof_macro_f1"] == pytest.approx(rows["kept"])   # arg-max's own figure
