"""Decision rules (fitted on out-of-fold 18-class probabilities), their cross-fitted estimate, the learned
voters (stacking, greedy_selection), and the pipeline / CLI around them, on synthetic probabilities where
the right answer is known."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ensemble_core.cli import main as cli_main
from ensemble_core.data.layout import load_dataset
from ensemble_core.ensemble.assemble import VotingError
from ensemble_core.ensemble.decision import (DecisionError, build_decision, confidence_temperature, crossfit,
                                             decide, decision_metrics, log_probs, mean_confidence, person_folds)
from ensemble_core.metrics import macro_f1
from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import SUBMISSION_FILE
from ensemble_core.ensemble.predictions import PredictionCacheError
from ensemble_core.ensemble.selection import GreedySelectionVote, StackingVote
from ensemble_core.ensemble.voting import SoftVote
from ensemble_core.executors import MemberResult
from ensemble_core.runfolder import DONE_FILE
from ensemble_core.manager import build_catalog, get_registry
from ensemble_core.recipe import MemberSpec, validate
from ensemble_core.registry import ComponentSpec

OLD = np.array([2, 5, 8, 11, 14, 17])      # every 60+ class


def synthetic(n=4000, signal=3.0, bias=-1.0, seed=0, informative=True):
    """Balanced classes, 5 photos per person; an informative member biased against the 60+ classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 18, size=n)
    persons = np.arange(n) // 5
    if informative:
        z = rng.normal(size=(n, 18))
        z[np.arange(n), y] += signal
        z[:, OLD] += bias
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
    else:
        p = rng.dirichlet(np.ones(18), size=n)
    return p, y, persons


# ---------------------------------------------------------------- decisions on known answers
def test_class_offsets_recover_the_bias_of_a_biased_informative_member():
    p, y, persons = synthetic()
    out = decide("class_offsets", p, y, persons, p[:500], registry=get_registry())
    assert out.applied == "class_offsets" and not out.kept_argmax
    offsets = np.array(list(out.fitted["class_offsets"].values()))
    young = np.setdiff1d(np.arange(18), OLD)
    # offsets are defined up to a constant: the 60+ classes get about +1 relative to the rest
    assert offsets[OLD].mean() - offsets[young].mean() == pytest.approx(1.0, abs=0.3)
    assert out.crossfit_oof_f1 > out.argmax_oof_f1 + 0.02
    assert out.per_class_after[2] > out.per_class_before[2]


def test_factor_offsets_find_the_60_plus_bias_with_11_parameters():
    p, y, persons = synthetic()
    out = decide("factor_offsets", p, y, persons, None, registry=get_registry())
    assert out.applied == "factor_offsets"
    f = out.fitted["factor_offsets"]
    for g in ("male", "female"):
        assert f[f"age=60+|{g}"] - max(f[f"age=<30|{g}"], f[f"age=30-59|{g}"]) > 0.5


def test_prior_power_corrects_a_member_that_follows_the_prior_too_much():
    rng = np.random.default_rng(3)
    n = 5000
    prior = np.ones(18)
    prior[OLD] = 0.15
    prior /= prior.sum()
    y = rng.choice(18, size=n, p=prior)
    z = rng.normal(size=(n, 18))
    z[np.arange(n), y] += 2.5
    z += 1.0 * np.log(prior)            # over-weights the prior, macro F1 wants it removed
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    out = decide("prior_power", p, y, np.arange(n) // 5, None, registry=get_registry())
    assert out.applied == "prior_power"
    assert out.fitted["alpha"] > 0.3


@pytest.mark.parametrize("name", ["class_offsets", "prior_power", "factor_offsets"])
def test_an_uninformative_member_keeps_argmax(name):
    p, y, persons = synthetic(informative=False, seed=10)
    out = decide(name, p, y, persons, p[:300], registry=get_registry())
    assert out.kept_argmax and out.applied == "argmax"
    assert "kept arg-max" in out.reason
    assert (out.eval_pred == p[:300].argmax(axis=1)).all()


def test_force_applies_a_rule_whose_estimate_is_not_better():
    p, y, persons = synthetic(informative=False, seed=10)
    out = decide({"name": "class_offsets", "params": {"force": True}}, p, y, persons, p[:300], registry=get_registry())
    assert out.applied == "class_offsets" and "force" in out.reason


def test_a_better_rule_is_held_back_when_the_eval_vote_is_not_the_one_its_estimate_describes():
    """Refit members blended in on eval only: the cross-fitted estimate is of the split members' vote, so a rule
    that beats arg-max there is reported but not applied unless forced; the eval predictions stay arg-max."""
    p, y, persons = synthetic()
    why = "2 refit member(s) without out-of-fold predictions take 75% of their group's eval vote"
    out = decide("factor_offsets", p, y, persons, p[:500], registry=get_registry(), eval_vote_differs=why)
    assert out.applied == "argmax" and out.kept_argmax and out.fitted == {} and out.held_back == why
    assert out.record({})["held_back"] == why and decision_metrics(out, None)["held_back"] == why
    assert out.crossfit_oof_f1 > out.argmax_oof_f1 and out.bootstrap_support >= 0.9      # the estimate is kept
    assert why in out.reason and "not of the eval vote" in out.reason and "force: true" in out.reason
    assert (out.eval_pred == p[:500].argmax(axis=1)).all()
    assert (out.eval_pred_rule != out.eval_pred).any()          # what the rule would have changed, for the report
    forced = decide({"name": "factor_offsets", "params": {"force": True}}, p, y, persons, p[:500],
                    registry=get_registry(), eval_vote_differs=why)
    assert forced.applied == "factor_offsets" and "applied anyway (force: true)" in forced.reason
    assert (forced.eval_pred == forced.eval_pred_rule).all() and forced.held_back is None
    # a rule that is not better is kept at arg-max for that reason, not "held back"
    q, z, people = synthetic(informative=False, seed=10)
    plain = decide("class_offsets", q, z, people, q[:300], registry=get_registry(), eval_vote_differs=why)
    assert plain.kept_argmax and plain.held_back is None and why not in plain.reason
    # a stored fit that was applied is re-applied as the file says, and the reason names the refit vote
    stored = {**decide("factor_offsets", p, y, persons, p[:500], registry=get_registry()).record({}), "run": {}}
    again = decide(None, p, y, persons, p[:500], registry=get_registry(), stored=stored, stored_path="d.json",
                   eval_vote_differs=why)
    assert again.applied == "factor_offsets" and why in again.reason and "as that file says" in again.reason

def test_argmax_is_todays_behaviour():
    p, y, persons = synthetic(seed=1)
    out = decide("argmax", p, y, persons, p[:100], registry=get_registry())
    assert out.applied == "argmax" and out.crossfit_oof_f1 is None
    assert (out.eval_pred == p[:100].argmax(axis=1)).all()


# ---------------------------------------------------------------- cross-fitting
class SpyDecision:
    """Records which rows (encoded in column 0) it was fitted on and which it predicted."""

    log: list = []

    def __init__(self, force=False, match_confidence=True, cv_folds=4):
        self.force, self.match_confidence, self.cv_folds = force, match_confidence, cv_folds

    def fit(self, log_p, targets):
        SpyDecision.log.append(("fit", np.round(np.exp(log_p[:, 0]) * 1e6).astype(int)))
        return self

    def __call__(self, log_p):
        SpyDecision.log.append(("predict", np.round(np.exp(log_p[:, 0]) * 1e6).astype(int)))
        return log_p

    def fitted(self):
        return {}

    def load(self, fitted):
        return self


class SpyPlugin:
    from ensemble_core.hookspecs import hookimpl

    @staticmethod
    @hookimpl
    def ensemble_register_decisions():
        return [ComponentSpec("spy", "decision", SpyDecision, "records its rows")]


def test_cross_fitting_never_scores_a_person_it_was_fitted_on():
    registry = build_catalog(extra_plugins=[SpyPlugin()], autoload=False).registry
    n = 600
    rng = np.random.default_rng(0)
    persons = rng.integers(0, 90, size=n)          # photos of one person scattered over the rows
    probs = np.full((n, 18), 0.5 / 17)
    probs[:, 0] = (np.arange(n) + 1) / 1e6         # row index, readable back from the log-probabilities
    SpyDecision.log = []
    pred, folds, _ = crossfit("spy", log_probs(probs), rng.integers(0, 18, n), persons, 4, registry)
    fits = [rows - 1 for kind, rows in SpyDecision.log if kind == "fit"]
    predicted = [rows - 1 for kind, rows in SpyDecision.log if kind == "predict"]
    assert len(fits) == len(predicted) == 4
    scored = np.concatenate(predicted)
    assert sorted(scored.tolist()) == list(range(n))           # every row scored once
    for fitted_rows, scored_rows in zip(fits, predicted):
        assert not set(persons[fitted_rows]) & set(persons[scored_rows])
    for k in range(4):                                         # one person, one fold
        assert len(set(folds[persons == persons[0]])) == 1


def test_person_folds_keep_a_person_together_and_use_every_fold():
    persons = np.repeat(np.arange(40), 3)
    folds = person_folds(persons, 5, seed=0)
    assert set(folds.tolist()) == set(range(5))
    for p in range(40):
        assert len(set(folds[persons == p])) == 1


def test_confidence_temperature_sharpens_a_mean_of_members_to_the_oof_confidence():
    p, y, persons = synthetic(seed=2)
    q, _, _ = synthetic(seed=5)
    averaged = log_probs((p + q) / 2)                 # averaging members lowers the top probability
    target = mean_confidence(log_probs(p))
    t = confidence_temperature(averaged, target)
    assert t < 1
    assert mean_confidence(averaged, t) == pytest.approx(target, abs=1e-4)


# ---------------------------------------------------------------- learned voters
def grouped_members(n=3000, n_folds=5, seed=0):
    """2 groups x k folds, NaN outside each member's fold: one good backbone, one noisy one (k-fold OOF)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, size=n)
    persons = np.arange(n) // 4
    fold = persons % n_folds
    probs = np.full((2 * n_folds, n, 6), np.nan)
    groups = []
    for g, signal in enumerate((2.5, 0.6)):
        for k in range(n_folds):
            z = rng.normal(size=(n, 6))
            z[np.arange(n), y] += signal
            z[:, 0] += 1.0 if g == 1 else 0.0           # the noisy group also favours class 0
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            probs[g * n_folds + k, fold == k] = p[fold == k]
            groups.append(f"backbone{g}")
    return probs, y, groups, persons


@pytest.mark.parametrize("cls", [StackingVote, GreedySelectionVote])
def test_learned_voters_are_never_worse_than_soft_on_the_oof_they_were_cross_fitted_on(cls):
    probs, y, groups, persons = grouped_members()
    voter = cls().fit(probs, y, groups=groups, persons=persons)
    soft = macro_f1(y, SoftVote()(probs).argmax(axis=1), 6)
    cross = macro_f1(y, voter.crossfit_oof.argmax(axis=1), 6)
    assert voter.soft_score == pytest.approx(soft)
    assert cross >= soft
    assert cross > soft + 0.01            # the noisy backbone is down-weighted
    assert voter(probs).shape == (len(y), 6)
    assert json.dumps(voter.describe(), default=float)


def test_greedy_selection_prefers_the_good_group_and_bags_its_counts():
    probs, y, groups, persons = grouped_members(seed=1)
    voter = GreedySelectionVote(n_iterations=10).fit(probs, y, groups=groups, persons=persons)
    assert voter.group_weights[0] > voter.group_weights[1]
    assert len(voter.fold_counts) == 5


def test_learned_voters_handle_shuffle_splits_with_partial_coverage():
    rng = np.random.default_rng(4)
    probs, y, groups, persons = grouped_members(seed=2)
    probs[:, rng.random(probs.shape[1]) < 0.3] = np.nan          # images no member predicted
    for cls in (StackingVote, GreedySelectionVote):
        voter = cls().fit(probs, y, groups=groups, persons=persons)
        assert voter.crossfit_score >= voter.soft_score


def test_learned_voters_fall_back_to_soft_when_cross_fitting_says_so():
    class NoisyOnly(GreedySelectionVote):
        def select(self, gp, y):                 # a selection that is worse than soft: only the noisy group
            return np.array([0.0, 1.0])

    probs, y, groups, persons = grouped_members(seed=3)
    voter = NoisyOnly().fit(probs, y, groups=groups, persons=persons)
    assert voter.fallback and "votes soft" in voter.fallback
    assert voter.crossfit_score < voter.soft_score
    assert np.allclose(voter(probs), SoftVote()(probs), equal_nan=True)
    soft = SoftVote()(probs)
    assert np.allclose(voter.crossfit_oof, soft, equal_nan=True)     # the reported OOF is the soft vote's


# ---------------------------------------------------------------- pipeline, CLI and bad input
class NoisyExecutor:
    """Writes noisy but informative member predictions biased against the 60+ classes (no training)."""

    def __init__(self, answers_csv: Path, eval_nan_rows: int = 0):
        self.ans = pd.read_csv(answers_csv)
        self.eval_nan_rows = eval_nan_rows

    def run(self, jobs):
        out = []
        for job in jobs:
            member = MemberSpec.from_dict(job.member)
            val = load_dataset(job.data_dir).train.iloc[job.val_rows]
            rng = np.random.default_rng(member.split_index + 17 * len(member.backbone["name"]))

            def probs(truth):
                z = rng.normal(size=(len(truth), 18))
                z[np.arange(len(truth)), truth] += 2.0
                z[:, OLD] -= 1.5
                return (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).astype(np.float32)

            run_dir = Path(job.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            truth = val["label18"].to_numpy()
            np.savez(run_dir / "oof.npz", image_id=val["image_id"].to_numpy().astype(str), probs=probs(truth),
                     truth=truth)
            ev = probs(self.ans["ans"].to_numpy())
            ev[:self.eval_nan_rows] = np.nan
            np.savez(run_dir / "eval.npz", image_id=self.ans["ImageID"].to_numpy().astype(str), probs=ev)
            (run_dir / DONE_FILE).write_text("noisy\n")
            out.append(MemberResult(job.run_name, job.run_dir, "trained"))
        return out


def kfold_recipe(decision="class_offsets", voter="soft", backbones=("test_resnet", "test_efficientnet")):
    return {"version": 1, "name": "dec", "split": {"name": "kfold", "params": {"n_splits": 4}}, "voter": voter,
            "decision": decision, "tasks": [{"task": "all18", "backbones": list(backbones)}]}


@pytest.fixture()
def noisy_run(demo_dir, tmp_path):
    out = tmp_path / "run"
    result = run_recipe(kfold_recipe({"name": "class_offsets", "params": {"force": True}}), data_dir=demo_dir,
                        out_dir=out, executor=NoisyExecutor(demo_dir / "eval" / "answers.csv"), quiet=True)
    return out, result


def test_the_run_fits_the_decision_saves_decision_json_and_reports_it(noisy_run, demo_dir):
    out, result = noisy_run
    record = json.loads((out / "decision.json").read_text())
    assert record["decision"]["name"] == "class_offsets" and record["applied"] == "class_offsets"
    assert len(record["run"]["recipe_hash"]) == 12 and record["run"]["members"]
    assert record["estimate"]["kind"] == "cross-fitted by person"
    report = (out / "report.md").read_text()
    assert "## Decision" in report and "cross-fitted" in report and "eval macro F1 (answers; reported only)" in report
    d = result.metrics["decision"]
    assert set(d["per_class_f1_before"]) == set(d["per_class_f1_after_crossfit"])
    # the submission is the decision's, not the arg-max
    sub = pd.read_csv(out / SUBMISSION_FILE)
    probs = np.load(out / "ensemble_eval.npz", allow_pickle=False)["probs"]
    scores = np.log(np.clip(probs, 1e-7, 1)) / record["temperature"] + np.array(record["fitted"]["theta"])
    assert (sub["ans"].to_numpy() == scores.argmax(axis=1)).all()


def test_ensemble_command_refits_another_decision_from_cache(noisy_run):
    out, _ = noisy_run
    assert cli_main(["ensemble", str(out), "--decision", "prior_power", "--quiet"]) == 0
    record = json.loads((out / "decision.json").read_text())
    assert record["decision"]["name"] == "prior_power"
    assert json.loads((out / "metrics.json").read_text())["decision"]["requested"]["name"] == "prior_power"


def test_decision_file_of_this_run_reapplies_it_and_of_another_run_is_refused(noisy_run, demo_dir, tmp_path, capsys):
    out, _ = noisy_run
    saved = tmp_path / "saved-decision.json"
    saved.write_text((out / "decision.json").read_text())
    before = (out / SUBMISSION_FILE).read_text()
    assert cli_main(["ensemble", str(out), "--decision-file", str(saved), "--quiet"]) == 0
    assert (out / SUBMISSION_FILE).read_text() == before
    # another run: three backbones -> another recipe hash
    other = tmp_path / "other"
    run_recipe(kfold_recipe(backbones=("test_resnet", "test_efficientnet", "test_convnext")), data_dir=demo_dir,
               out_dir=other, executor=NoisyExecutor(demo_dir / "eval" / "answers.csv"), quiet=True)
    stamp = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code = cli_main(["ensemble", str(out), "--decision-file", str(other / "decision.json"), "--quiet"])
    assert code != 0
    err = capsys.readouterr().err
    theirs = json.loads((other / "decision.json").read_text())["run"]["recipe_hash"]
    ours = json.loads(saved.read_text())["run"]["recipe_hash"]
    assert "fitted on another run" in err and theirs in err and ours in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == stamp     # nothing overwritten


def test_a_task_without_oof_predictions_is_named(noisy_run, capsys):
    out, _ = noisy_run
    member = sorted((out / "members").iterdir())[0]
    (member / "oof.npz").unlink()
    stamp = (out / SUBMISSION_FILE).read_bytes()
    assert cli_main(["ensemble", str(out), "--decision", "class_offsets", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert str(member / "oof.npz") in err and "rerun" in err
    assert (out / SUBMISSION_FILE).read_bytes() == stamp


def test_nan_rows_in_a_members_predictions_are_refused(demo_dir, tmp_path):
    with pytest.raises(PredictionCacheError, match=r"eval.npz: 3 of \d+ row\(s\) of probs hold NaN"):
        run_recipe(kfold_recipe(), data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True,
                   executor=NoisyExecutor(demo_dir / "eval" / "answers.csv", eval_nan_rows=3))
    assert not (tmp_path / "run" / SUBMISSION_FILE).exists()


def test_classes_absent_from_the_oof_truth_are_named():
    p, y, persons = synthetic(seed=6)
    keep = ~np.isin(y, [2, 17])
    with pytest.raises(DecisionError, match=r"class\(es\) 2 mask/male/60\+, 17 normal/female/60\+ never occur"):
        decide("class_offsets", p[keep], y[keep], persons[keep], None, registry=get_registry())
    assert decide("argmax", p[keep], y[keep], persons[keep], None, registry=get_registry()).applied == "argmax"


def test_a_single_member_cannot_be_stacked_or_selected(demo_dir, tmp_path):
    for voter in ("stacking", "greedy_selection"):
        with pytest.raises(VotingError, match=rf"{voter} needs members of at least two groups .*use voter soft"):
            run_recipe(kfold_recipe(voter=voter, backbones=("test_resnet",)), data_dir=demo_dir,
                       out_dir=tmp_path / voter, executor=NoisyExecutor(demo_dir / "eval" / "answers.csv"),
                       quiet=True)
        assert not (tmp_path / voter / SUBMISSION_FILE).exists()


def test_no_oof_rows_at_all_is_a_clear_error():
    p, y, persons = synthetic(n=100)
    p[:] = np.nan
    with pytest.raises(DecisionError, match="no training image has an out-of-fold prediction"):
        decide("class_offsets", p, y, persons, None, registry=get_registry())


# ---------------------------------------------------------------- recipe field and flags
def test_recipe_decision_field_validates_like_voter():
    recipe = kfold_recipe(decision="class_ofsets")
    with pytest.raises(Exception) as err:
        validate(recipe)
    assert "decision" in str(err.value) and "class_offsets" in str(err.value)
    with pytest.raises(Exception, match="unknown parameter 'alpha_maxx'"):
        validate(kfold_recipe(decision={"name": "prior_power", "params": {"alpha_maxx": 1}}))
    assert validate(kfold_recipe(decision="factor_offsets")).decision == "factor_offsets"
    assert validate({k: v for k, v in kfold_recipe().items() if k != "decision"}).decision == {"name": "argmax"}


def test_fire_decision_flag_sets_the_recipe_field(tmp_path):
    import subprocess
    repo = Path(__file__).resolve().parents[1]
    fire = Path(sys.executable).with_name("fire")
    for flags, expected in ((["--decision", "class_offsets"], "class_offsets"),
                            (["--decision=prior_power"], "prior_power"),
                            (["--decision.name=factor_offsets"], "factor_offsets")):
        out = subprocess.run([str(fire), str(repo / "recipes" / "single18.py"), "recipe", "--preset", "small", *flags],
                             capture_output=True, text=True, cwd=tmp_path, check=True).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("decision:"))
        assert expected in line


def test_build_decision_rejects_bad_params_with_the_rule_named():
    with pytest.raises(DecisionError, match="class_offsets: grid_max and grid_step must be > 0"):
        build_decision({"name": "class_offsets", "params": {"grid_max": -1}}, get_registry())


def test_metrics_count_the_classes_the_submission_holds(noisy_run):
    out, result = noisy_run
    sub = pd.read_csv(out / SUBMISSION_FILE)["ans"].to_numpy()
    counts = list(result.metrics["eval"]["predicted_class_counts"].values())
    assert counts == np.bincount(sub, minlength=18).tolist()
