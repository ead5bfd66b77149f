"""`tune`: bad input stops before any trial; a study killed mid-trial and rerun ends with every trial
finished in one SQLite study, the killed trial's member resuming from its checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ensemble_core.cli import main
from helpers_runs import tiny_recipe

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")

SPACE = """\
tasks.0.optimizer.params.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
voter.name: {type: categorical, choices: [soft, geometric_mean]}
"""


def write_inputs(tmp_path: Path, space: str = SPACE, **overrides) -> tuple[Path, Path]:
    recipe = tiny_recipe(**{"defaults.epochs": 3, "executor": {"name": "local"},
                            **overrides})
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    (tmp_path / "space.yaml").write_text(space)
    return tmp_path / "recipe.json", tmp_path / "space.yaml"


@pytest.mark.parametrize("space,expected", [
    ("tasks.0.optimiser.params.lr: {type: float, low: 0.001, high: 0.01}\n",
     "the recipe has no field 'tasks.0.optimiser'"),
    ("tasks.3.loss: {type: categorical, choices: [focal]}\n", "'3' is not an index of it"),
    ("defaults.epochs: {type: int, low: 8, high: 2}\n", "low 8 is greater than high 2; swap them"),
    ("defaults.optimizer.params.lrr: {type: float, low: 0.001, high: 0.01}\n", "unknown parameter 'lrr'"),
    ("defaults.optimizer.name: {type: categorical, choices: [adamw, lamm]}\n", "unknown optimizer 'lamm'"),
    ("voter.name: {type: uniform, low: 0, high: 1}\n", "needs type int, float or categorical"),
    ("refit_share: {type: float, low: 0.2, high: 0.8}\n", "refit members vote on eval only"),
])
def test_bad_space_is_one_clear_error_before_any_trial(tmp_path, demo_dir, capsys, space, expected):
    recipe, space_file = write_inputs(tmp_path, space)
    rc = main(["tune", str(recipe), "--space", str(space_file), "--trials", "3", "--out_dir",
               str(tmp_path / "out"), "--data_dir", str(demo_dir)])
    err = capsys.readouterr().err
    assert rc == 1 and expected in err, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "out" / "trials").exists()


def test_storage_that_cannot_be_opened_is_one_clear_error(tmp_path, demo_dir, capsys):
    recipe, space_file = write_inputs(tmp_path)
    url = f"sqlite:///{tmp_path}/no/such/folder/study.db"
    rc = main(["tune", str(recipe), "--space", str(space_file), "--trials", "3", "--out_dir",
               str(tmp_path / "out"), "--data_dir", str(demo_dir), "--storage", url])
    err = capsys.readouterr().err
    assert rc == 1 and f"--storage '{url}' cannot be opened" in err, err
    assert "Traceback" not in err and not (tmp_path / "out" / "trials").exists()
    rc = main(["tune", str(recipe), "--space", str(space_file), "--trials", "3", "--out_dir",
               str(tmp_path / "out"), "--data_dir", str(demo_dir), "--storage", "postgresql://u:secret@nohost/db"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot be opened" in err and "secret" not in err, err


def tune_command(recipe: Path, space: Path, out: Path, demo_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ensemble_core", "tune", str(recipe), "--space", str(space), "--trials", "3",
            "--out_dir", str(out), "--data_dir", str(demo_dir), "--quiet"]


def test_tune_killed_mid_trial_and_rerun_ends_with_three_finished_trials(tmp_path, demo_dir):
    from optuna.trial import TrialState

    recipe, space = write_inputs(tmp_path)
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(tune_command(recipe, space, out, demo_dir), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # wait until trial 0 finished and trial 1's member saved its first epoch's checkpoint, then kill -9
        deadline = time.monotonic() + 400
        killed_in = None
        while time.monotonic() < deadline and proc.poll() is None:
            ckpts = list((out / "trials" / "trial-0001" / "members").glob("*/checkpoints/last.pt"))
            if ckpts:
                proc.send_signal(signal.SIGKILL)
                killed_in = ckpts[0].parent.parent
                break
            time.sleep(0.05)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_in is not None, f"tune ended before trial 1 saved a checkpoint: {proc.stderr.read()}"
    assert not (killed_in / "DONE").exists()
    study = optuna.load_study(study_name="tiny18-tune", storage=url)
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.COMPLETE) == 1 and states[1] == TrialState.RUNNING

    rerun = subprocess.run(tune_command(recipe, space, out, demo_dir), env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr

    study = optuna.load_study(study_name="tiny18-tune", storage=url)
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 3 and [t.number for t in failed] == [1]
    # the killed trial ran again with its parameters, in its run folder: its member resumed
    retry = next(t for t in trials if t.user_attrs.get("resume_of") == 1)
    assert retry.state == TrialState.COMPLETE and retry.params == failed[0].params
    assert retry.user_attrs["run_dir"] == failed[0].user_attrs["run_dir"] == str(out / "trials" / "trial-0001")
    summary = json.loads((killed_in / "summary.json").read_text())
    assert summary["resumed_from_epoch"] >= 1
    # every finished trial is a normal run folder; the objective is its own OOF macro F1
    for t in complete:
        metrics = json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())
        assert t.value == pytest.approx(metrics["oof"]["macro_f1"])
    best = json.loads((out / "tune" / "best.json").read_text())
    assert best["oof_macro_f1"] == pytest.approx(max(t.value for t in complete))
    assert best["finished_trials"] == 3
    rows = (out / "tune" / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + len(trials) and "param.voter.name" in rows[0]
    png = (out / "tune" / "param_importances.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_pruned_trial_stops_its_members_and_counts_as_finished(tmp_path, demo_dir):
    """The pruning path end to end: epoch F1 reported, the run asked to stop, the trial marked pruned.
    A pruner that prunes everything makes it deterministic (--prune uses MedianPruner)."""
    from optuna.trial import TrialState

    from ensemble_core.stopping import stop_requested
    from ensemble_core.tune import tune
    recipe, space = write_inputs(tmp_path, **{"defaults.epochs": 4})
    out = tmp_path / "out"
    result = tune(recipe, space, 1, out_dir=out, data_dir=demo_dir, prune=True, quiet=True,
                  pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    study = optuna.load_study(study_name="tiny18-tune", storage=f"sqlite:///{out / 'study.db'}")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED and trial.intermediate_values
    assert min(trial.intermediate_values) == 0          # step 1000 x member 0 + epoch 0
    members = out / "trials" / "trial-0000" / "members"
    (member,) = [d for d in members.iterdir() if d.is_dir()]
    assert (member / "checkpoints" / "last.pt").is_file() and not (member / "DONE").exists()
    assert not (members / ".stop-requested").exists() and not stop_requested()
    assert result["best"] is None and [r["state"] for r in result["trials"]] == ["PRUNED"]


def test_rerun_draws_new_parameters_instead_of_replaying_the_first_run(tmp_path, demo_dir):
    from ensemble_core.tune import tune
    recipe, space = write_inputs(tmp_path, **{"defaults.epochs": 1})
    out = tmp_path / "out"
    tune(recipe, space, 1, out_dir=out, data_dir=demo_dir, quiet=True)
    result = tune(recipe, space, 2, out_dir=out, data_dir=demo_dir, quiet=True)
    lrs = [r["param.tasks.0.optimizer.params.lr"] for r in result["trials"]]
    assert len(lrs) == 2 and lrs[0] != lrs[1]
    # the study is tied to its base recipe and data: a changed recipe under the same name is refused
    from ensemble_core.tune import TuneError
    changed = json.loads(recipe.read_text())
    changed["seed"] = 7
    other = tmp_path / "changed.json"
    other.write_text(json.dumps(changed))
    with pytest.raises(TuneError, match=r"was started with another base recipe or data \(recipe .*recipe.json, "
                                        r"preset None, data .*\); its trials would not compare"):
        tune(other, space, 3, out_dir=out, data_dir=demo_dir, quiet=True)


def test_trials_markdown_prints_trial_numbers_as_numbers():
    import math

    import pandas as pd

    from ensemble_core.tune import _trials_markdown
    frame = pd.DataFrame({"number": [0, 1], "value": [0.5, 1.0], "resume_of": [math.nan, 0.0],
                          "param.lr": [0.001, 0.0123456]})
    rows = _trials_markdown(frame).splitlines()[2:]
    assert rows == ["| 0 | 0.5000 |  | 0.0010 |", "| 1 | 1.0000 | 0 | 0.0123 |"]


def test_a_recipes_refit_members_are_left_out_of_the_trials(tmp_path, demo_dir, capsys):
    from ensemble_core.tune import tune
    recipe, space = write_inputs(tmp_path, **{"defaults.epochs": 1, "refit": 1})
    out = tmp_path / "out"
    tune(recipe, space, 1, out_dir=out, data_dir=demo_dir)
    assert "refit: 1 is left out of the trials" in capsys.readouterr().out
    trial = next((out / "trials").iterdir())
    assert "refit" not in json.loads((trial / "recipe.json").read_text())
    assert not [m for m in (trial / "members").iterdir() if "-refit-" in m.name]
