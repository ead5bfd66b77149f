"""Refit members: trained on every person (no validation), they take ``refit_share`` of their group's eval
vote and leave the out-of-fold figures to the split members."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ensemble_core.ensemble.assemble import blend_refit
from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import ENSEMBLE_EVAL_FILE
from helpers_runs import tiny_recipe
from helpers_train import single_torch_thread  # noqa: F401 (autouse fixture)


def read(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def refit_run(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("refit") / "run"
    recipe = tiny_recipe(**{"refit": 1, "refit_share": 0.6, "defaults.ema_decay": 0.9})
    return out, run_recipe(recipe, data_dir=demo_dir, out_dir=out, quiet=True)


def test_a_refit_member_trains_on_every_person_and_keeps_its_last_weights(refit_run, demo_dir):
    out, result = refit_run
    fold, refit = sorted((out / "members").iterdir())
    assert fold.name.endswith(result.members[0].run_name.split("-")[-1]) and "-s1-" in refit.name
    summary = json.loads((refit / "summary.json").read_text())
    config = json.loads((refit / "config.json").read_text())
    assert summary["refit"] is True and summary["best_val_macro_f1"] is None and summary["oof_macro_f1"] is None
    from ensemble_core.data.layout import load_dataset
    assert config["n_val"] == 0 and config["n_train"] == len(load_dataset(demo_dir).train)   # every image
    assert summary["best_weights"] == "ema" and summary["epochs_run"] == 1
    oof = read(refit / "oof.npz")
    assert oof["probs"].shape == (0, 18) and len(oof["image_id"]) == 0
    assert read(refit / "eval.npz")["probs"].shape == read(fold / "eval.npz")["probs"].shape
    record = json.loads((refit / "metrics.jsonl").read_text().splitlines()[0])
    assert record["macro_f1"] is None and record["val_loss"] is None and record["weights"] == "ema"
    assert record["best_macro_f1"] is None and "Infinity" not in (refit / "metrics.jsonl").read_text()
    assert not json.loads((fold / "summary.json").read_text())["refit"]


def test_refit_members_take_their_share_of_the_eval_vote_and_none_of_the_oof(refit_run):
    out, result = refit_run
    fold, refit = sorted((out / "members").iterdir())
    fold_eval, refit_eval = read(fold / "eval.npz"), read(refit / "eval.npz")
    voted = read(out / ENSEMBLE_EVAL_FILE)
    assert (voted["image_id"] == fold_eval["image_id"]).all()
    blended = 0.4 * fold_eval["probs"].astype(np.float64) + 0.6 * refit_eval["probs"]
    np.testing.assert_allclose(voted["probs"], blended / blended.sum(axis=1, keepdims=True), atol=1e-5)
    # out of fold: the split member alone
    fold_summary = json.loads((fold / "summary.json").read_text())
    assert result.metrics["oof"]["macro_f1"] == pytest.approx(fold_summary["oof_macro_f1"])
    task = result.metrics["tasks"]["all18"]
    assert task["members"] == [fold.name] and task["refit_members"] == [refit.name]
    rows = {m["run_name"]: m for m in result.metrics["members"]}
    assert rows[refit.name]["refit"] and rows[refit.name]["val_macro_f1"] is None
    report = (out / "report.md").read_text()
    assert "| all18 | 1 + 1 refit |" in report and "1 (refit: every person)" in report
    assert "blended with them at refit_share 0.6 before the vote" in report


def test_a_rerun_trains_nothing_and_gives_the_same_submission(refit_run, demo_dir):
    out, result = refit_run
    before = (out / "submission.csv").read_bytes()
    again = run_recipe(json.loads((out / "recipe.json").read_text()), data_dir=demo_dir, out_dir=out, quiet=True)
    assert again.trained == 0 and again.skipped == 2
    assert (out / "submission.csv").read_bytes() == before


def test_blend_refit_mixes_each_split_member_with_its_own_groups_refit_mean():
    a, b = np.full((1, 2, 3), 0.1), np.full((1, 2, 3), 0.3)
    stack = np.concatenate([a, b, a])                        # groups x, x, y
    refit = np.concatenate([np.full((1, 2, 3), 0.5), np.full((1, 2, 3), 0.7), np.full((1, 2, 3), 0.9)])
    out = blend_refit(stack, ["x", "x", "y"], refit, ["x", "x", "z"], 0.5)
    np.testing.assert_allclose(out[0], 0.5 * 0.1 + 0.5 * 0.6)     # refit mean of x: 0.6
    np.testing.assert_allclose(out[1], 0.5 * 0.3 + 0.5 * 0.6)
    np.testing.assert_allclose(out[2], 0.1)                          # y has no refit member


def test_a_refit_member_without_its_split_members_is_refused(refit_run, demo_dir):
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.ensemble.assemble import vote_task
    from ensemble_core.ensemble.predictions import PredictionCacheError, load_member
    from ensemble_core.ensemble.voting import SoftVote
    from ensemble_core.manager import get_registry
    from ensemble_core.tasks import build_task
    from ensemble_core.recipe import Recipe
    out, _ = refit_run
    refit = [m for m in Recipe.load(out / "recipe.json").plan() if m.split_index == 1]
    task = build_task(get_registry(), refit[0].task)
    preds = [load_member(out, m, task.num_original_classes) for m in refit]
    with pytest.raises(PredictionCacheError, match="no split member with the same settings"):
        vote_task("all18", task, preds, SoftVote(), load_dataset(demo_dir).train, None)


def test_refit_is_part_of_the_member_not_guessed_from_its_split(demo_dir):
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.errors import TrainingError
    from ensemble_core.manager import get_registry
    from ensemble_core.tasks import build_task
    from ensemble_core.train.inputs import select_samples
    ds = load_dataset(demo_dir)
    task = build_task(get_registry(), "all18")
    rows = np.arange(len(ds.train))
    with pytest.raises(TrainingError, match="a member needs both"):          # a fold member with no validation
        select_samples(task, ds, (rows, rows[:0]))
    with pytest.raises(TrainingError, match="refit member trains on every person, but its split has 5"):
        select_samples(task, ds, (rows[5:], rows[:5]), refit=True)
    assert len(select_samples(task, ds, (rows, rows[:0]), refit=True).val) == 0


def test_refit_needs_the_splitter_to_make_n_splits(demo_dir, tmp_path, monkeypatch):
    """Refit members take the split indices after n_splits: a splitter that makes another count is refused
    before anything is written (a refit member must never be handed a person split)."""
    from ensemble_core.data.splits import ShuffleSplitter
    from ensemble_core.errors import RecipeError
    original = ShuffleSplitter.split
    monkeypatch.setattr(ShuffleSplitter, "split", lambda self, persons, seed: original(self, persons, seed) * 2)
    with pytest.raises(RecipeError, match=r"made 2 person split\(s\) but the recipe plans 1"):
        run_recipe(tiny_recipe(refit=1), data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "members").exists()


def test_the_decision_is_told_that_refit_members_change_the_eval_vote(refit_run, monkeypatch):
    """The OOF figures describe the split members alone; the decision gets why the eval vote differs (and holds
    back a rule whose estimate is better unless forced: tests/test_decision.py)."""
    import ensemble_core.ensemble.decision as decision
    from ensemble_core.cli import main as cli_main
    out, _ = refit_run
    seen, real = [], decision.decide

    def spy(*args, **kwargs):
        seen.append(kwargs.get("eval_vote_differs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(decision, "decide", spy)
    before = (out / "submission.csv").read_bytes()
    assert cli_main(["ensemble", str(out), "--quiet"]) == 0
    assert seen == ["1 refit member(s) without out-of-fold predictions take 60% of their group's eval vote"]
    assert (out / "submission.csv").read_bytes() == before


def test_a_refit_member_writes_best_once_with_its_final_ema_weights(demo_dir, tmp_path, monkeypatch):
    """Every epoch of a refit member 'improves' (its latest weights are kept), but best.pt is written once,
    after the last epoch, with the EMA weights; a kill between that epoch's last.pt and best.pt is repaired
    on the rerun from last.pt's EMA."""
    import dataclasses

    import torch

    from ensemble_core.data.layout import load_dataset
    from ensemble_core.manager import get_registry
    from ensemble_core.train import member as member_module
    from ensemble_core.train import train_member
    from helpers_train import tiny_member
    ds = load_dataset(demo_dir)
    member = dataclasses.replace(tiny_member("mask", epochs=2, ema_decay=0.9), refit=True)
    split = (np.arange(len(ds.train)), np.arange(0))
    saved = []
    real_save = member_module.save_checkpoint
    monkeypatch.setattr(member_module, "save_checkpoint", lambda path, state: (saved.append(path.name),
                                                                              real_save(path, state))[1])
    run_dir = tmp_path / member.run_name
    train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    assert saved == ["last.pt", "last.pt", "best.pt"]
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 1 and best["weights"] == "ema"
    for name, tensor in last["ema"].items():
        assert torch.equal(best["model"][name], tensor), name
    eval_before = read(run_dir / "eval.npz")["probs"]

    # killed after the final epoch's last.pt: best.pt is missing, DONE was never written
    (run_dir / "checkpoints" / "best.pt").unlink()
    for name in ("DONE", "summary.json", "eval.npz", "oof.npz"):
        (run_dir / name).unlink()
    saved.clear()
    summary = train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    assert saved == ["best.pt"] and summary["epochs_run"] == 2 and summary["best_weights"] == "ema"
    np.testing.assert_array_equal(read(run_dir / "eval.npz")["probs"], eval_before)
