"""Cached member predictions: read ``oof.npz`` / ``eval.npz`` and align them on image ids.

A finished member folder (``DONE`` present) holds

- ``oof.npz``: ``image_id`` (str), ``probs`` float ``(N, C)``, ``truth`` int ``(N,)`` — its validation images;
- ``eval.npz``: ``image_id``, ``probs`` — every eval image,

with probabilities over the task's original classes. :func:`stack` lines up
several members on one list of image ids as ``(M, N, C)`` with NaN rows where
a member has no prediction, which is what voters take.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.runfolder import DONE_FILE, EVAL_FILE, OOF_FILE, member_dir
from ensemble_core.recipe import Member

class PredictionCacheError(EnsembleCoreError):
    """A member's cached predictions are missing or do not fit the data."""


@dataclass
class MemberPredictions:
    member: Member
    run_dir: Path
    oof_ids: np.ndarray
    oof_probs: np.ndarray
    oof_truth: np.ndarray
    eval_ids: np.ndarray | None
    eval_probs: np.ndarray | None

    @property
    def run_name(self) -> str:
        return self.run_dir.name


def _read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise PredictionCacheError(f"{path}: missing array(s) {', '.join(missing)} (has {data.files}); "
                                           f"delete {path.parent / DONE_FILE} and rerun to retrain this member")
            return {k: data[k] for k in keys}
    except PredictionCacheError:
        raise
    except Exception as exc:
        raise PredictionCacheError(f"{path}: cannot read ({exc!r}); delete {path.parent / DONE_FILE} and rerun "
                                   f"to retrain this member") from exc


def load_member(out_dir: str | Path, member: Member, n_classes: int,
                eval_from: str | Path | None = None) -> MemberPredictions:
    """Read one finished member's predictions; ``n_classes`` is its task's number of original classes.
    ``eval_from``: a folder whose ``members/<run_name>/eval.npz`` replaces the member's own (``predict``: the
    member's predictions of other images)."""
    run_dir = member_dir(out_dir, member.run_name)
    if not (run_dir / DONE_FILE).is_file():
        raise PredictionCacheError(f"member {member.run_name} is not finished ({run_dir / DONE_FILE} missing); "
                                   f"run the recipe again to train it")
    oof = _read_npz(run_dir / OOF_FILE, ("image_id", "probs", "truth"))
    eval_path = member_dir(eval_from if eval_from is not None else out_dir, member.run_name) / EVAL_FILE
    ev = _read_npz(eval_path, ("image_id", "probs")) if eval_path.is_file() or eval_from is not None else None
    for path, arrays in ((run_dir / OOF_FILE, oof), (eval_path, ev)):
        if arrays is None:
            continue
        probs = arrays["probs"]
        if probs.ndim != 2 or probs.shape[1] != n_classes or len(probs) != len(arrays["image_id"]):
            raise PredictionCacheError(
                f"{path}: probs has shape {probs.shape} for {len(arrays['image_id'])} image ids; task "
                f"{member.task_name!r} needs ({len(arrays['image_id'])}, {n_classes}). Delete {run_dir / DONE_FILE} "
                f"and rerun to retrain this member")
        bad = ~np.isfinite(probs).all(axis=1)
        if bad.any():
            raise PredictionCacheError(
                f"{path}: {int(bad.sum())} of {len(probs)} row(s) of probs hold NaN / infinite values (e.g. "
                f"image {arrays['image_id'][bad][0]!r}); these predictions are corrupt. Delete {run_dir / DONE_FILE} "
                f"and rerun to retrain this member")
    return MemberPredictions(member, run_dir, oof["image_id"].astype(str), oof["probs"].astype(np.float64),
                             oof["truth"].astype(np.int64),
                             None if ev is None else ev["image_id"].astype(str),
                             None if ev is None else ev["probs"].astype(np.float64))


def align(ids: np.ndarray, probs: np.ndarray, universe: np.ndarray, where: str,
          require_all: bool = False) -> np.ndarray:
    """Rows of ``probs`` (keyed by ``ids``) placed on ``universe``; NaN rows for ids it lacks.

    Ids outside ``universe`` are an error (the cache was made from other data),
    as are missing ids when ``require_all``.
    """
    index = {img: i for i, img in enumerate(universe)}
    pos = np.fromiter((index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
    unknown = ids[pos < 0]
    if len(unknown):
        raise PredictionCacheError(f"{where}: {len(unknown)} image id(s) not in the data set (e.g. "
                                   f"{unknown[:3].tolist()}); the cache was made from other data. Use the data "
                                   f"folder of that run, or retrain into a fresh output folder")
    out = np.full((len(universe), probs.shape[1]), np.nan)
    out[pos] = probs
    if require_all and len(set(pos.tolist())) < len(universe):
        missing = np.setdiff1d(np.arange(len(universe)), pos)
        raise PredictionCacheError(f"{where}: no prediction for {len(missing)} of {len(universe)} images (e.g. "
                                   f"{universe[missing[:3]].tolist()}); delete the member's DONE and rerun")
    return out


def drop_eval_ids(pred: MemberPredictions, ids: Sequence[str]) -> MemberPredictions:
    """``pred`` without its eval predictions of ``ids``: eval images this run left out (``--skip_bad_files``)
    that a member finished before they went bad still holds; they get the fallback class like the others."""
    if pred.eval_ids is None or not len(ids):
        return pred
    keep = ~np.isin(pred.eval_ids, np.asarray(ids, dtype=str))
    return replace(pred, eval_ids=pred.eval_ids[keep], eval_probs=pred.eval_probs[keep])


def stack(preds: Sequence[MemberPredictions], universe: np.ndarray, which: str) -> np.ndarray:
    """``(M, len(universe), C)``: each member's ``which`` ("oof" or "eval") predictions on ``universe``."""
    rows = []
    for p in preds:
        if which == "oof":
            rows.append(align(p.oof_ids, p.oof_probs, universe, str(p.run_dir / OOF_FILE)))
        elif which == "eval":
            if p.eval_ids is None:
                raise PredictionCacheError(f"{p.run_dir / EVAL_FILE} is missing, but the data set has eval "
                                           f"images; delete {p.run_dir / DONE_FILE} and rerun to predict them")
            rows.append(align(p.eval_ids, p.eval_probs, universe, str(p.run_dir / EVAL_FILE), require_all=True))
        else:
            raise ValueError(f"which must be 'oof' or 'eval', got {which!r}")
    return np.stack(rows)
