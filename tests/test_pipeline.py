"""The ensemble pipeline: run_recipe end to end, resume, the `ensemble` command, and the assembly of
every recipe structure checked with an executor that writes the true labels as predictions."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ensemble_core.cli import main as cli_main
from ensemble_core.ensemble.combine import CoverageError
from ensemble_core.errors import RecipeError
from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import SUBMISSION_FILE
from ensemble_core.executors import MemberJob, MemberResult
from helpers_pipeline import TINY, TruthExecutor, load_recipe_module

def answers(demo_dir: Path) -> pd.DataFrame:
    return pd.read_csv(demo_dir / "eval" / "answers.csv")


@pytest.mark.parametrize("recipe_name", ["full", "multihead", "single18", "hetero"])
def test_every_recipe_structure_reproduces_the_answers_from_true_predictions(recipe_name, demo_dir, tmp_path):
    module = load_recipe_module(recipe_name)
    recipe = module.build(TINY)
    executor = TruthExecutor(demo_dir / "eval" / "answers.csv")
    result = run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", executor=executor, quiet=True)
    sub = pd.read_csv(result.submission)
    expected = answers(demo_dir)
    assert list(sub.columns) == ["ImageID", "ans"]
    assert sub["ImageID"].tolist() == expected["ImageID"].tolist()      # info.csv order
    assert (sub["ans"] == expected["ans"]).all()
    assert result.metrics["oof"]["accuracy"] == 1.0
    assert result.metrics["oof"]["macro_f1"] == 1.0
    assert result.metrics["oof"]["n_images"] > 0
    assert executor.calls == len(result.members)


def test_soft_vote_outvotes_one_wrong_split_and_hard_vote_too(demo_dir, tmp_path):
    recipe = load_recipe_module("full").build(TINY)
    out = tmp_path / "run"
    result = run_recipe(recipe, data_dir=demo_dir, out_dir=out, quiet=True,
                        executor=TruthExecutor(demo_dir / "eval" / "answers.csv", wrong_split=1))
    # on eval every split votes: two right members outvote the wrong one
    assert (pd.read_csv(result.submission)["ans"] == answers(demo_dir)["ans"]).all()
    # out of fold each image has one member, so split 1's images are wrong
    assert result.metrics["oof"]["accuracy"] < 1.0
    assert cli_main(["ensemble", str(out), "--voter", "hard", "--quiet"]) == 0
    assert (pd.read_csv(out / SUBMISSION_FILE)["ans"] == answers(demo_dir)["ans"]).all()
    assert json.loads((out / "metrics.json").read_text())["voter"]["name"] == "hard"


@pytest.mark.slow
def test_pipeline_trains_resumes_and_recomputes(demo_dir, tmp_path, capsys):
    """Real training with a tiny model at tiny images (2 splits to save time); then a rerun that trains nothing."""
    recipe = load_recipe_module("full").build(TINY)
    recipe["split"]["params"]["n_splits"] = 2
    out = tmp_path / "run"
    first = run_recipe(recipe, data_dir=demo_dir, out_dir=out, quiet=True)
    assert first.trained == 8 and first.skipped == 0
    for name in ("recipe.json", "run.json", "splits.json", "metrics.json", "report.md", "confusion.png",
                 SUBMISSION_FILE):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    sub = pd.read_csv(out / SUBMISSION_FILE)
    assert sub["ImageID"].tolist() == answers(demo_dir)["ImageID"].tolist()
    assert sub["ans"].between(0, 17).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["members"]) == 8
    assert set(metrics["oof"]["factor_accuracy"]) == {"mask", "gender", "age"}
    assert len(metrics["oof"]["per_class_f1"]) == 18
    report = (out / "report.md").read_text()
    assert "0.7372" in report and "trained from scratch" in report and "confusion.png" in report
    assert json.loads((out / "recipe.json").read_text())["tasks"] == recipe["tasks"]

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("members/*/oof.npz")}
    checked = (out / "data_check.json").stat().st_mtime_ns
    again = run_recipe(recipe, out_dir=out, quiet=True)          # data folder read back from run.json
    assert again.trained == 0 and again.skipped == 8
    # nothing is retrained or re-checked (how long a rerun takes: benchmarks/fail_fast.py)
    assert (out / "data_check.json").stat().st_mtime_ns == checked
    assert {p: p.stat().st_mtime_ns for p in out.glob("members/*/oof.npz")} == stamps
    assert again.metrics["oof"] == first.metrics["oof"]

    capsys.readouterr()
    assert cli_main(["ensemble", str(out), "--voter", "geometric_mean"]) == 0
    printed = capsys.readouterr().out
    assert "macro F1" in printed and str(out / SUBMISSION_FILE) in printed
    assert json.loads((out / "metrics.json").read_text())["voter"]["name"] == "geometric_mean"


def test_tasks_that_do_not_cover_the_18_classes_fail_before_training(demo_dir, tmp_path):
    recipe = load_recipe_module("full").build(TINY)
    recipe["tasks"] = recipe["tasks"][:2]     # mask and gender, no age model
    with pytest.raises(CoverageError, match="no task predicts age"):
        run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_identical_members_are_refused(demo_dir, tmp_path):
    recipe = load_recipe_module("single18").build(TINY)
    recipe["tasks"].append(dict(recipe["tasks"][0]))
    with pytest.raises(RecipeError, match=r"tasks\[0\] and tasks\[1\] plan the same member"):
        run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True)


def test_member_failure_names_the_member_and_keeps_no_submission(demo_dir, tmp_path):
    from ensemble_core.errors import TrainingError

    class Failing:
        def run(self, jobs):
            return [MemberResult(j.run_name, j.run_dir, "failed", error="ValueError: boom") for j in jobs]

    recipe = load_recipe_module("single18").build(TINY)
    with pytest.raises(TrainingError, match=r"3 of 3 member\(s\) failed:\n  - all18-test_resnet-s0-.*boom"):
        run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", executor=Failing(), quiet=True)
    assert not (tmp_path / "run" / SUBMISSION_FILE).exists()


def test_member_job_round_trips_through_pickle(tmp_path):
    job = MemberJob(member={"recipe": "r"}, data_dir="/data", train_rows=np.arange(3), val_rows=np.arange(3, 5),
                    run_dir=str(tmp_path / "m"), exclude=("a.jpg",), options={"quiet": True})
    back = pickle.loads(pickle.dumps(job))
    assert back.run_name == "m" and back.exclude == ("a.jpg",) and back.val_rows.tolist() == [3, 4]
    assert not back.is_done()


def test_run_member_job_reports_a_failure_with_its_traceback_file(tmp_path):
    from ensemble_core.executors import run_member_job
    from ensemble_core.runfolder import ERROR_FILE

    job = MemberJob(member={"recipe": "r"}, data_dir=str(tmp_path), train_rows=np.arange(2), val_rows=np.arange(2, 3),
                    run_dir=str(tmp_path / "m"))
    result = run_member_job(job, dataset=object())
    assert result.status == "failed" and "TypeError" in result.error
    assert "Traceback" in (tmp_path / "m" / ERROR_FILE).read_text()


class FillingSoftVote:
    """A plugin voter that reads "(N, C) finite rows summing to 1" as "fill the images no member predicted with
    uniform rows" (issue 28): the engine must mask those rows itself, so the run's figures cannot change."""

    def fit(self, probs, targets):
        return self

    def __call__(self, probs):
        from ensemble_core.ensemble.voting import SoftVote
        out = SoftVote()(probs)
        out[np.isnan(out).any(axis=1)] = 1.0 / out.shape[1]
        return out


def test_a_voter_that_fills_unpredicted_rows_gives_the_figures_of_one_that_keeps_them_nan(demo_dir, tmp_path):
    from ensemble_core import ComponentSpec, hookimpl
    from ensemble_core.manager import build_catalog
    from helpers_pipeline import plugin_module

    @hookimpl
    def ensemble_register_voters():
        return [ComponentSpec("filling", "voter", f"{__name__}:FillingSoftVote")]

    registry = build_catalog([plugin_module("filling_plugin", locals())], autoload=False).registry
    recipe = load_recipe_module("full").build(TINY)
    runs = {}
    for voter in ("soft", "filling"):
        recipe["voter"] = {"name": voter}
        runs[voter] = run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / voter, quiet=True, registry=registry,
                                 executor=TruthExecutor(demo_dir / "eval" / "answers.csv", wrong_split=1)).metrics
    soft, filling = runs["soft"]["oof"], runs["filling"]["oof"]
    assert 0 < soft["n_images"] < soft["n_train_images"]     # 3 splits of 20 % leave images no member predicted
    assert (filling["n_images"], filling["macro_f1"], filling["confusion"]) == \
        (soft["n_images"], soft["macro_f1"], soft["confusion"])
    for task, summary in runs["filling"]["tasks"].items():
        assert summary["n_oof_images"] == runs["soft"]["tasks"][task]["n_oof_images"], task
    # the report names a plugin's voter as the recipe does, not <module.FillingSoftVote object at 0x...>
    report = (tmp_path / "filling" / "report.md").read_text()
    assert "| mask | 3 | filling |" in report and "- voter: `filling`" in report and " object at 0x" not in report


def test_the_report_shows_a_voter_as_the_recipe_names_it_with_its_weights_per_group():
    from ensemble_core.ensemble.report import component_text, voter_cell

    assert component_text("median") == "median"
    assert component_text({"name": "weighted_soft", "params": {"weights": [2, 1]}}) == 'weighted_soft {"weights": [2, 1]}'
    task = {"voter": "weighted_soft", "groups": ["resnet18", "resnet18", "vit"], "weights": [0.75, 0.75, 0.25]}
    assert voter_cell(task) == "weighted_soft (weights resnet18 0.75, vit 0.25)"
    assert voter_cell({"voter": "soft", "groups": ["a"], "weights": None}) == "soft"


def test_the_report_says_a_default_that_every_task_sets_itself_changed_no_member(demo_dir, tmp_path):
    recipe = load_recipe_module("single18").build(TINY)
    recipe["defaults"]["loss"] = "focal"                       # single18's one task names its own loss
    result = run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True,
                        executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    note = ("defaults.loss changes no member: every task entry sets its own loss (tasks[0] all18), and a task's "
            "field wins over defaults")
    assert sum(n.startswith(note) for n in result.metrics["notes"]) == 1
    assert note in result.report.read_text()
