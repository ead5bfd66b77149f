"""Voters: combine the members of one task into one probability table.

Every voter takes ``probs`` of shape ``(M, N, C)`` (M members, N images, C
classes of the task) in which a member that has no prediction for an image has
a row of NaN (out-of-fold predictions cover only that member's validation
images). Each image is voted over the members available for it; an image no
member predicts stays NaN.

    voter = WeightedSoftVote().fit(oof_probs, oof_targets)
    ensemble_probs = voter(eval_probs)          # (N, C)

``fit`` is a no-op for voters with nothing to learn, so the pipeline can call
it on every voter.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ensemble_core.metrics import macro_f1


@runtime_checkable
class Voter(Protocol):
    def fit(self, probs: np.ndarray, targets: np.ndarray) -> "Voter": ...

    def __call__(self, probs: np.ndarray) -> np.ndarray: ...


def check_probs(probs: np.ndarray, who: str) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3:
        raise ValueError(f"{who}: probs must have shape (members, images, classes), got {probs.shape}")
    if probs.shape[0] == 0:
        raise ValueError(f"{who}: no members to vote over (probs has shape {probs.shape})")
    return probs


def available(probs: np.ndarray) -> np.ndarray:
    """``(M, N)`` bool: member m has a prediction for image n (no NaN in its row)."""
    return ~np.isnan(probs).any(axis=2)


def mask_unpredicted(voted: np.ndarray, probs: np.ndarray, who: str = "voter") -> np.ndarray:
    """``voted`` ``(N, C)`` as float, with a NaN row on every image that no member of ``probs`` ``(M, N, C)``
    predicted, whatever the voter returned there: the engine's rule, so a plugin voter that fills those rows
    (uniform, zeros) cannot make the out-of-fold figures count images nobody predicted."""
    voted = np.array(voted, dtype=np.float64)
    if voted.shape != probs.shape[1:]:
        raise ValueError(f"{who} gave shape {voted.shape} for probs {probs.shape}; a voter gives (N, C) = "
                         f"{probs.shape[1:]}")
    voted[~available(probs).any(axis=0)] = np.nan
    return voted


def weighted_mean(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """NaN-aware weighted mean over members; weights renormalised over the members available per image.

    An image whose available members all have weight 0 falls back to their
    plain mean; an image with no member stays NaN.
    """
    avail = available(probs)
    filled = np.where(avail[:, :, None], probs, 0.0)
    w = np.asarray(weights, dtype=np.float64)[:, None] * avail          # (M, N)
    wsum = w.sum(axis=0)                                                 # (N,)
    zero = (wsum <= 0) & avail.any(axis=0)
    if zero.any():
        w[:, zero] = avail[:, zero]
        wsum = w.sum(axis=0)
    out = np.einsum("mn,mnc->nc", w, filled)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / wsum[:, None]
    out[wsum <= 0] = np.nan
    return out


class SoftVote:
    """Mean of the members' probabilities."""

    def fit(self, probs: np.ndarray, targets: np.ndarray) -> "SoftVote":
        return self

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = check_probs(probs, "soft vote")
        return weighted_mean(probs, np.ones(probs.shape[0]))

    def __repr__(self) -> str:
        return "SoftVote()"


class HardVote:
    """Majority of the members' arg-max classes; ties go to the class with the higher mean probability.

    Returns vote shares (rows sum to 1) with the tie-break folded in as a
    tiny fraction of the soft vote.
    """

    tie_break = 1e-6

    def fit(self, probs: np.ndarray, targets: np.ndarray) -> "HardVote":
        return self

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = check_probs(probs, "hard vote")
        avail = available(probs)
        n_classes = probs.shape[2]
        choice = np.argmax(np.where(avail[:, :, None], probs, -np.inf), axis=2)     # (M, N)
        onehot = np.eye(n_classes)[choice] * avail[:, :, None]
        onehot[~avail] = np.nan
        votes = weighted_mean(onehot, np.ones(probs.shape[0]))
        soft = weighted_mean(probs, np.ones(probs.shape[0]))
        return (votes + self.tie_break * soft) / (1.0 + self.tie_break)

    def __repr__(self) -> str:
        return "HardVote()"


class GeometricMean:
    """Normalised geometric mean of the members' probabilities (a product of experts)."""

    eps = 1e-12

    def fit(self, probs: np.ndarray, targets: np.ndarray) -> "GeometricMean":
        return self

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = check_probs(probs, "geometric mean")
        logp = np.log(np.clip(probs, self.eps, 1.0))       # NaN stays NaN
        mean_log = weighted_mean(logp, np.ones(probs.shape[0]))
        with np.errstate(invalid="ignore"):
            mean_log = mean_log - mean_log.max(axis=1, keepdims=True)
            out = np.exp(mean_log)
            return out / out.sum(axis=1, keepdims=True)

    def __repr__(self) -> str:
        return "GeometricMean()"


class WeightedSoftVote:
    """Weighted mean of the members' probabilities.

    Members may share weights: ``fit(probs, targets, groups)`` takes an
    optional ``(M,)`` array of group labels (the pipeline passes one group per
    backbone and settings, so the folds of one backbone share its weight).
    Without ``groups`` every member is its own group.

    With ``weights`` given (one per group, or one per member) they are used as
    is. Without, :meth:`fit` searches one weight per group on out-of-fold
    predictions to maximise macro F1: uniform weights first, then
    ``n_candidates`` random Dirichlet draws, then ``refine_rounds`` of
    per-group coordinate steps. A candidate replaces the incumbent only when it
    scores strictly higher, so the fitted voter is never worse than
    :class:`SoftVote` on the data it was fitted on.
    """

    STEP_FACTORS = (0.0, 0.5, 2.0)

    def __init__(self, weights: Sequence[float] | None = None, n_candidates: int = 200,
                 refine_rounds: int = 2, seed: int = 0):
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weighted_soft: weights must be a non-empty list of non-negative numbers "
                                 f"with a positive sum, got {weights!r}")
            weights = w
        if n_candidates < 0 or refine_rounds < 0:
            raise ValueError(f"weighted_soft: n_candidates and refine_rounds must be >= 0, "
                             f"got {n_candidates}, {refine_rounds}")
        self.given: np.ndarray | None = weights
        self.weights: np.ndarray | None = None        # per member, set by fit()
        self.group_weights: np.ndarray | None = None
        self.n_candidates = int(n_candidates)
        self.refine_rounds = int(refine_rounds)
        self.seed = int(seed)
        self.fit_score: float | None = None
        self.uniform_score: float | None = None

    @staticmethod
    def _groups(groups: Sequence[Any] | None, n_members: int) -> np.ndarray:
        if groups is None:
            return np.arange(n_members)
        labels = list(groups)
        if len(labels) != n_members:
            raise ValueError(f"weighted_soft.fit: {len(labels)} group label(s) for {n_members} member(s)")
        first = {g: i for i, g in reversed(list(enumerate(labels)))}
        order = {g: k for k, g in enumerate(sorted(first, key=first.get))}   # groups in order of appearance
        return np.array([order[g] for g in labels], dtype=np.int64)

    def _member_weights(self, given: np.ndarray, groups: np.ndarray) -> np.ndarray:
        n_groups, n_members = int(groups.max()) + 1, len(groups)
        if given.size == n_groups:
            return given[groups]
        if given.size == n_members:
            return given
        raise ValueError(f"weighted_soft: {given.size} weight(s) for {n_members} member(s) in {n_groups} group(s); "
                         f"give one weight per group (backbone, in recipe order) or one per member "
                         f"(backbones x splits, in recipe order)")

    def _score(self, probs: np.ndarray, targets: np.ndarray, rows: np.ndarray, w: np.ndarray) -> float:
        voted = weighted_mean(probs[:, rows], w)
        return macro_f1(targets[rows], voted.argmax(axis=1), probs.shape[2])

    def fit(self, probs: np.ndarray, targets: np.ndarray, groups: Sequence[Any] | None = None) -> "WeightedSoftVote":
        probs = check_probs(probs, "weighted_soft.fit")
        members = self._groups(groups, probs.shape[0])
        if self.given is not None:
            self.weights = self._member_weights(self.given, members)
            return self
        targets = np.asarray(targets)
        if targets.shape != (probs.shape[1],):
            raise ValueError(f"weighted_soft.fit: targets must have shape ({probs.shape[1]},), got {targets.shape}")
        rows = available(probs).any(axis=0)
        if not rows.any():
            raise ValueError("weighted_soft.fit: no image has a prediction from any member; "
                             "fit on out-of-fold predictions (oof.npz)")
        n_groups = int(members.max()) + 1
        best_w = np.ones(n_groups)
        best = self.uniform_score = self._score(probs, targets, rows, best_w[members])
        rng = np.random.default_rng(self.seed)
        if n_groups > 1:
            for cand in rng.dirichlet(np.ones(n_groups), size=self.n_candidates) * n_groups:
                score = self._score(probs, targets, rows, cand[members])
                if score > best:
                    best, best_w = score, cand
            for _ in range(self.refine_rounds):
                for g in range(n_groups):
                    for factor in self.STEP_FACTORS:
                        cand = best_w.copy()
                        cand[g] = cand[g] * factor if factor else 0.0
                        if cand.sum() <= 0:
                            continue
                        score = self._score(probs, targets, rows, cand[members])
                        if score > best:
                            best, best_w = score, cand
        self.group_weights = best_w / best_w.sum()
        self.weights = self.group_weights[members]
        self.fit_score = best
        return self

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = check_probs(probs, "weighted_soft")
        weights = self.weights
        if weights is None and self.given is not None and self.given.size == probs.shape[0]:
            weights = self.given
        if weights is None and self.given is not None:
            raise ValueError(f"weighted_soft: {self.given.size} weight(s) for {probs.shape[0]} member(s); call "
                             f"fit(probs, targets, groups) to spread per-group weights over the members")
        if weights is None:
            raise ValueError("weighted_soft: no weights; give `weights` in the recipe (voter.params.weights) "
                             "or call fit() on out-of-fold predictions first")
        if weights.size != probs.shape[0]:
            raise ValueError(f"weighted_soft: {weights.size} weight(s) for {probs.shape[0]} member(s); "
                             f"vote the members it was fitted on")
        return weighted_mean(probs, weights)

    def __repr__(self) -> str:
        shown = next((w for w in (self.group_weights, self.given, self.weights) if w is not None), None)
        w = None if shown is None else [round(float(x), 4) for x in shown]
        return f"WeightedSoftVote(weights={w})"
