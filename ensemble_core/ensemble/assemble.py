"""Assemble an ensemble from cached member predictions: vote per task, then combine to 18 classes.

Members are grouped by task name (every backbone and split of a task votes
together). Each task's voter is fitted on that task's out-of-fold predictions,
restricted to the images the task is about (``Task.rows``: men for
``age_male``), then applied to the out-of-fold and the eval predictions.

Refit members (the recipe's ``refit``: trained on every person, so nothing out of fold) do not vote
themselves: on the eval images each split member's prediction is blended with the mean of its group's
refit members, ``(1 - refit_share) * own + refit_share * refit`` (:func:`blend_refit`). The voter is
fitted on, and applied to, the same split members, and a soft vote of the blended members gives the
refit members ``refit_share`` of the group's eval vote.

Out-of-fold 18-class predictions exist for the images that every task
predicted out of fold. A gender-conditional age task has, by design, no
prediction for the other gender's images; there its factor is taken as uniform
(it only weighs in through the gender model's doubt) and the number of such
rows is reported as ``filled_uniform``.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ensemble_core.ensemble.combine import combine, require_coverage
from ensemble_core.ensemble.predictions import (MemberPredictions, PredictionCacheError, drop_eval_ids, load_member,
                                                stack)
from ensemble_core.ensemble.voting import Voter, mask_unpredicted
from ensemble_core.errors import EnsembleCoreError
from ensemble_core.labels import Task
from ensemble_core.recipe import Member, Recipe
from ensemble_core.registry import normalize_ref
from ensemble_core.data.formats import dataset_label_space
from ensemble_core.tasks import build_task, task_key


class VotingError(EnsembleCoreError):
    """A voter cannot combine a task's members (e.g. weights that do not match the members)."""


@dataclass
class TaskVote:
    """One task's members, its fitted voter and the voted probabilities."""

    name: str
    task: Task
    members: list[MemberPredictions]
    voter: Voter
    train_ids: np.ndarray       # (N_train,) image ids the out-of-fold arrays are keyed on
    rows: np.ndarray            # (N_train,) bool: images this task is about
    truth: np.ndarray           # (N_train,) original-class truth
    oof: np.ndarray             # (N_train, C) voted out-of-fold probabilities, NaN where no member predicted
    eval: np.ndarray | None     # (N_eval, C)
    groups: list[str] = field(default_factory=list)   # per member: members differing only in split share one
    filled_uniform: int = 0
    refit: list[MemberPredictions] = field(default_factory=list)   # blended into ``members`` on eval


@dataclass
class Ensemble:
    voter_ref: dict
    tasks: dict[str, TaskVote]
    train_ids: np.ndarray
    truth18: np.ndarray         # (N_train,)
    oof18: np.ndarray           # (N_train, 18), NaN rows where some task has no out-of-fold prediction
    eval_ids: np.ndarray | None
    eval18: np.ndarray | None   # (N_eval, 18)
    notes: list[str] = field(default_factory=list)
    label_space: Any = None     # the classes of oof18 / eval18 (None: the 18 mask classes)

    @property
    def oof_rows(self) -> np.ndarray:
        return ~np.isnan(self.oof18).any(axis=1)

    @property
    def eval_pred(self) -> np.ndarray | None:
        return None if self.eval18 is None else self.eval18.argmax(axis=1)


def group_members(members: list[Member]) -> dict[str, list[Member]]:
    """Members by task (:func:`ensemble_core.tasks.task_key`: the task name, with its factor for ``factor``)."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(task_key(m.task), []).append(m)
    return groups


def build_voter(voter_ref: Any, registry) -> Voter:
    return registry.build("voter", voter_ref, field="voter")


def _check_truth(pred: MemberPredictions, truth: np.ndarray, train_ids: np.ndarray) -> None:
    index = {img: i for i, img in enumerate(train_ids)}
    pos = np.array([index.get(i, -1) for i in pred.oof_ids], dtype=np.int64)
    known = pos >= 0
    bad = known & (truth[np.maximum(pos, 0)] != pred.oof_truth)
    if bad.any():
        first = pred.oof_ids[bad][0]
        raise PredictionCacheError(f"{pred.run_dir / 'oof.npz'}: truth differs from the data set's labels on "
                                   f"{int(bad.sum())} image(s) (e.g. {first}); the labels changed since this "
                                   f"member trained. Retrain into a fresh output folder")


def member_groups(preds: list[MemberPredictions]) -> list[str]:
    """One label per member; members that differ only in their split share it (the backbone's name,
    numbered when one backbone appears with different settings)."""
    labels, by_key = [], {}
    for p in preds:
        config = p.member.to_dict()
        config.pop("split_index"), config.pop("seed"), config.pop("refit", None)
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in by_key:
            base = p.member.backbone["name"]
            same = sum(1 for label in by_key.values() if label.split("#")[0] == base)
            by_key[key] = base if same == 0 else f"{base}#{same + 1}"
        labels.append(by_key[key])
    return labels


def is_refit(pred: MemberPredictions) -> bool:
    """A member trained on every person (the recipe's ``refit``; its ``oof.npz`` is empty)."""
    return bool(pred.member.refit)


def blend_refit(eval_stack: np.ndarray, groups: list[str], refit_stack: np.ndarray, refit_groups: list[str],
                share: float) -> np.ndarray:
    """Each split member's eval rows (``eval_stack`` ``(M, N, C)``) blended with the mean of its group's refit
    members (``refit_stack`` ``(R, N, C)``): ``(1 - share) * own + share * refit mean``. Groups without a
    refit member are left as they are."""
    out = eval_stack.copy()
    for g in set(refit_groups):
        mean = refit_stack[[i for i, rg in enumerate(refit_groups) if rg == g]].mean(axis=0)
        for m, mg in enumerate(groups):
            if mg == g:
                out[m] = (1.0 - share) * eval_stack[m] + share * mean
    return out


def fit_voter(voter: Voter, probs: np.ndarray, targets: np.ndarray, groups: list[str],
              persons: np.ndarray | None = None) -> None:
    """``fit`` with the member groups (members of one group share a weight) and the person of each image
    (learned voters cross-fit by person) when the voter's ``fit`` takes them."""
    try:
        accepted = inspect.signature(voter.fit).parameters
    except (TypeError, ValueError):
        accepted = {}
    extra: dict[str, Any] = {}
    if "groups" in accepted:
        extra["groups"] = groups
    if "persons" in accepted and persons is not None:
        extra["persons"] = persons
    voter.fit(probs, targets, **extra)


def vote_task(name: str, task: Task, preds: list[MemberPredictions], voter: Voter, train_df,
              eval_ids: np.ndarray | None, refit_share: float = 0.5) -> TaskVote:
    """Fit ``voter`` on the split members' out-of-fold predictions and vote them (eval: blended with the refit
    members, :func:`blend_refit`)."""
    preds_of = {False: ([], []), True: ([], [])}     # refit? -> (members, their group labels)
    for p, g in zip(preds, member_groups(preds)):
        members, labels = preds_of[is_refit(p)]
        members.append(p)
        labels.append(g)
    (preds, groups), (refit, refit_groups) = preds_of[False], preds_of[True]
    orphans = sorted(set(refit_groups) - set(groups))
    if orphans:
        raise PredictionCacheError(f"task {name!r}: refit member(s) of {', '.join(orphans)} have no split member "
                                   f"with the same settings to vote with; every refit member needs its split "
                                   f"members (the recipe plans both)")
    train_ids = train_df["image_id"].astype(str).to_numpy()
    rows = np.asarray(task.rows(train_df), dtype=bool)
    truth = np.asarray(task.truth(train_df), dtype=np.int64)
    for p in preds:
        _check_truth(p, truth, train_ids)
    oof_stack = stack(preds, train_ids, "oof")     # NaN where a member has no prediction
    fit_stack = oof_stack.copy()
    fit_stack[:, ~rows] = np.nan                   # the voter learns only on the images the task is about
    if np.isnan(fit_stack).all():
        raise PredictionCacheError(f"task {name!r}: its members ({', '.join(p.run_name for p in preds)}) have no "
                                   f"out-of-fold prediction on the images the task is about")
    eval_stack = stack(preds, eval_ids, "eval") if eval_ids is not None else None
    if refit and eval_stack is not None:
        eval_stack = blend_refit(eval_stack, groups, stack(refit, eval_ids, "eval"), refit_groups, refit_share)
    persons = train_df["person"].astype(str).to_numpy() if "person" in train_df else None
    try:
        fit_voter(voter, fit_stack, truth, groups, persons)
        oof = voter(oof_stack)
        crossfit = getattr(voter, "crossfit_oof", None)     # learned voters: honest OOF predictions
        if crossfit is not None:
            oof = np.array(oof, dtype=np.float64)
            have = ~np.isnan(crossfit).any(axis=1)
            oof[have] = crossfit[have]
        # the engine's own rule, whatever the voter returned: an image no member predicted stays NaN
        oof = mask_unpredicted(oof, oof_stack, "the voter on out-of-fold predictions")
        ev = mask_unpredicted(voter(eval_stack), eval_stack, "the voter on eval predictions") \
            if eval_stack is not None else None
    except ValueError as exc:
        raise VotingError(f"task {name!r} with {len(preds)} member(s) "
                          f"({', '.join(p.run_name for p in preds)}): {exc}") from exc
    return TaskVote(name, task, preds, voter, train_ids, rows, truth, oof, ev, groups, refit=refit)


def build_ensemble(recipe: Recipe, members: Sequence[Member], out_dir: str | Path, dataset, registry,
                   voter: Any = None, eval_from: str | Path | None = None) -> Ensemble:
    """Vote and combine the cached predictions of ``recipe``'s planned ``members`` in ``out_dir``.

    ``voter`` (a name or ``{name, params}``) replaces the recipe's voter. ``eval_from``: a folder whose
    ``members/<run_name>/eval.npz`` replace the members' own eval predictions (``predict``: ``dataset.eval``
    holds other images; the voters are still fitted on the members' out-of-fold predictions in ``out_dir``).
    """
    voter_ref = normalize_ref(voter if voter is not None else recipe.voter)
    groups = group_members(list(members))
    space = dataset_label_space(dataset)
    tasks = {name: build_task(registry, ms[0].task, label_space=space) for name, ms in groups.items()}
    require_coverage(tasks, f"recipe {recipe.name!r} tasks", label_space=space)
    train_df = dataset.train.reset_index(drop=True)
    train_ids = train_df["image_id"].astype(str).to_numpy()
    eval_ids = None
    if dataset.eval is not None and len(dataset.eval):
        eval_ids = dataset.eval["image_id"].astype(str).to_numpy()
    votes: dict[str, TaskVote] = {}
    for name, members in groups.items():
        task = tasks[name]
        skipped = list(getattr(dataset, "eval_skipped", None) or [])
        preds = [drop_eval_ids(load_member(out_dir, m, task.num_original_classes, eval_from), skipped)
                 for m in members]
        votes[name] = vote_task(name, task, preds, build_voter(voter_ref, registry), train_df, eval_ids,
                                refit_share=recipe.refit_share)
    notes = []
    oof_parts, by_design = {}, {}
    for name, tv in votes.items():
        probs = tv.oof.copy()
        # an age model of one gender says nothing about the other gender's images
        by_design[name] = np.isnan(probs).any(axis=1) & ~tv.rows
        probs[by_design[name]] = 1.0 / probs.shape[1]
        oof_parts[name] = (tv.task, probs)
    oof18 = combine(oof_parts, label_space=space)
    eligible = ~np.isnan(oof18).any(axis=1)
    for name, tv in votes.items():
        tv.filled_uniform = int((by_design[name] & eligible).sum())
    filled = {n: tv.filled_uniform for n, tv in votes.items() if tv.filled_uniform}
    if filled:
        notes.append("out-of-fold 18-class figures take a gender-specific age model as uniform on the other "
                     "gender's images, which it never predicts out of fold: "
                     + ", ".join(f"{n} on {k} image(s)" for n, k in filled.items()))
    refit = [p.run_name for tv in votes.values() for p in tv.refit]
    if refit:
        notes.append(f"{len(refit)} refit member(s) trained on every person ({', '.join(refit)}): on the eval "
                     f"images each split member's prediction of their group is blended with them at refit_share "
                     f"{recipe.refit_share:g} before the vote (with a soft vote, {recipe.refit_share:g} of the "
                     f"group's vote); they have no out-of-fold predictions, so the out-of-fold figures describe the "
                     f"split members alone, each trained on fewer people")
    crossfitted = [n for n, tv in votes.items() if getattr(tv.voter, "crossfit_oof", None) is not None]
    if crossfitted:
        notes.append(f"voter {voter_ref['name']!r} was cross-fitted by person (tasks {', '.join(crossfitted)}): "
                     f"its out-of-fold figures come from models that never saw the people they score")
    searched = [n for n, tv in votes.items() if getattr(tv.voter, "fit_score", None) is not None]
    if searched:
        notes.append(f"voter {voter_ref['name']!r} chose its weights on these out-of-fold predictions "
                     f"(tasks {', '.join(searched)}), so its out-of-fold figures are optimistic; the eval "
                     f"score is the unbiased one")
    eval18 = (combine({n: (tv.task, tv.eval) for n, tv in votes.items()}, label_space=space)
              if eval_ids is not None else None)
    truth18 = train_df[space.class_column].to_numpy().astype(np.int64)
    return Ensemble(voter_ref, votes, train_ids, truth18, oof18, eval_ids, eval18, notes, label_space=space)
