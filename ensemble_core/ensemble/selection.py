"""Learned voters: stacking and greedy ensemble selection, both cross-fitted by person.

Both work on *groups*: members that differ only in their split (the folds / shuffle splits of one
backbone and settings) form one group, and a group's prediction for an image is the mean over the
members that predicted it (out of fold: usually one member; on eval: every member). So k-fold and
shuffle splits both work.

Both are honest about what they learned: :meth:`fit` cross-fits them by person (fit on the OOF
images of k-1 person folds, predict the held-out fold) and keeps those predictions in
``crossfit_oof``, which the pipeline reports as the voter's out-of-fold predictions. When the
cross-fitted macro F1 is below the soft vote's on the same images, the voter falls back to the soft
vote (``fallback`` says why), so it is never worse than ``soft`` on the data it was cross-fitted on.

- ``stacking``: a multinomial :class:`sklearn.linear_model.LogisticRegression` on the groups'
  log-probabilities (the features a weighted geometric mean plus class offsets would use); its
  inverse regularisation ``C`` is chosen among ``Cs`` by inner person-grouped CV on log-loss.
- ``greedy_selection``: Caruana et al. (2004) ensemble selection with replacement: start empty, add
  the group whose inclusion gives the best macro F1 of the averaged prediction, ``n_iterations``
  times, keep the best prefix. Bagged the way AutoGluon's ``WeightedEnsemble`` is: one selection per
  outer fold (on the other folds), the final weights are the mean of the folds' weights.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ensemble_core.metrics import macro_f1
from ensemble_core.ensemble.voting import available, check_probs, weighted_mean

LOG_EPS = 1e-7


def group_ids(groups: Sequence[Any] | None, n_members: int) -> tuple[np.ndarray, list[str]]:
    """(member -> group index, group labels in order of appearance)."""
    labels = [str(g) for g in (groups if groups is not None else range(n_members))]
    if len(labels) != n_members:
        raise ValueError(f"{len(labels)} group label(s) for {n_members} member(s)")
    order: list[str] = []
    for g in labels:
        if g not in order:
            order.append(g)
    return np.array([order.index(g) for g in labels], dtype=np.int64), order


def group_means(probs: np.ndarray, member_group: np.ndarray) -> np.ndarray:
    """``(G, N, C)``: per group, the NaN-aware mean over its members (NaN where none predicted)."""
    n_groups = int(member_group.max()) + 1
    return np.stack([weighted_mean(probs[member_group == g], np.ones(int((member_group == g).sum())))
                     for g in range(n_groups)])


def person_folds(persons: np.ndarray | None, n_rows: int, n_folds: int, seed: int) -> np.ndarray:
    from ensemble_core.ensemble.decision import person_folds as folds_by_person
    people = np.arange(n_rows) if persons is None else np.asarray(persons)
    return folds_by_person(people, n_folds, seed)


def _score(probs: np.ndarray, targets: np.ndarray, n_classes: int) -> float:
    return macro_f1(targets, probs.argmax(axis=1), n_classes)


class _CrossFitted:
    """Shared by the learned voters: groups, rows, outer folds, the soft-vote fallback."""

    name = "learned"

    def __init__(self, cv_folds: int = 5, seed: int = 0):
        if int(cv_folds) < 2:
            raise ValueError(f"{self.name}: cv_folds must be >= 2, got {cv_folds}")
        self.cv_folds, self.seed = int(cv_folds), int(seed)
        self.member_group: np.ndarray | None = None
        self.group_labels: list[str] = []
        self.crossfit_oof: np.ndarray | None = None
        self.crossfit_score: float | None = None
        self.soft_score: float | None = None
        self.fallback: str | None = None

    def _prepare(self, probs, targets, groups, persons):
        probs = check_probs(probs, f"{self.name}.fit")
        self.member_group, self.group_labels = group_ids(groups, probs.shape[0])
        if len(self.group_labels) < 2:
            raise ValueError(f"{self.name} needs members of at least two groups (backbones or settings) to learn "
                             f"from; this task has one ({self.group_labels[0]}) — use voter soft")
        targets = np.asarray(targets, dtype=np.int64)
        if targets.shape != (probs.shape[1],):
            raise ValueError(f"{self.name}.fit: targets must have shape ({probs.shape[1]},), got {targets.shape}")
        gp = group_means(probs, self.member_group)
        rows = available(gp).all(axis=0)
        if rows.sum() < 2 * self.cv_folds:
            raise ValueError(f"{self.name}.fit: only {int(rows.sum())} image(s) have an out-of-fold prediction from "
                             f"every group; fit on out-of-fold predictions (oof.npz) of members that share images")
        people = None if persons is None else np.asarray(persons)[rows]
        folds = person_folds(people, int(rows.sum()), self.cv_folds, self.seed)
        return probs, targets, gp, rows, folds

    def _finish(self, probs, targets, rows, cf):
        n_classes = probs.shape[2]
        soft = weighted_mean(probs[:, rows], np.ones(probs.shape[0]))
        self.soft_score = _score(soft, targets[rows], n_classes)
        self.crossfit_score = _score(cf, targets[rows], n_classes)
        out = np.full((probs.shape[1], n_classes), np.nan)
        if self.crossfit_score < self.soft_score:
            self.fallback = (f"cross-fitted OOF macro F1 {self.crossfit_score:.4f} < soft vote {self.soft_score:.4f} "
                             f"on the same {int(rows.sum())} images: votes soft")
            out[rows] = soft
        else:
            out[rows] = cf
        self.crossfit_oof = out

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = check_probs(probs, self.name)
        if self.member_group is None:
            raise ValueError(f"{self.name}: not fitted; call fit() on out-of-fold predictions first")
        if len(self.member_group) != probs.shape[0]:
            raise ValueError(f"{self.name}: fitted on {len(self.member_group)} member(s), got {probs.shape[0]}")
        if self.fallback:
            return weighted_mean(probs, np.ones(probs.shape[0]))
        return self._predict(group_means(probs, self.member_group))


class StackingVote(_CrossFitted):
    """Multinomial logistic regression on the groups' log-probabilities, ``C`` chosen by inner CV."""

    name = "stacking"

    def __init__(self, Cs: Sequence[float] = (0.01, 0.1, 1.0), cv_folds: int = 5, inner_folds: int = 3,
                 max_iter: int = 300, seed: int = 0):
        super().__init__(cv_folds, seed)
        Cs = [float(c) for c in Cs]
        if not Cs or any(not c > 0 for c in Cs) or int(inner_folds) < 2:
            raise ValueError(f"stacking: Cs must be positive numbers and inner_folds >= 2, got {Cs}, {inner_folds}")
        self.Cs, self.inner_folds, self.max_iter = Cs, int(inner_folds), int(max_iter)
        self.model = None
        self.C: float | None = None
        self.fold_Cs: list[float] = []

    @staticmethod
    def features(gp: np.ndarray) -> np.ndarray:
        """(G, N, C) -> (N, G*C) log-probabilities; a group missing on a row takes the other groups' mean."""
        filled = gp.copy()
        with warnings.catch_warnings():   # an image no group predicted has no mean: it stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(gp, axis=0) if np.isnan(gp).any() else None
        if mean is not None:
            miss = np.isnan(filled)
            filled[miss] = np.broadcast_to(mean, filled.shape)[miss]
        return np.log(np.clip(filled, LOG_EPS, 1.0)).transpose(1, 0, 2).reshape(gp.shape[1], -1)

    def _model(self, C: float):
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(C=C, max_iter=self.max_iter)

    def _proba(self, model, X: np.ndarray, n_classes: int) -> np.ndarray:
        out = np.zeros((len(X), n_classes))
        out[:, model.classes_] = model.predict_proba(X)
        return out

    def _choose_C(self, X, y, people) -> float:
        if len(self.Cs) == 1:
            return self.Cs[0]
        folds = person_folds(people, len(y), self.inner_folds, self.seed + 1)
        n_classes = self.n_classes
        losses = []
        for C in self.Cs:
            loss = 0.0
            for k in range(int(folds.max()) + 1):
                held = folds == k
                model = self._model(C).fit(X[~held], y[~held])
                p = self._proba(model, X[held], n_classes)
                loss -= np.log(np.clip(p[np.arange(held.sum()), y[held]], 1e-12, 1.0)).sum()
            losses.append(loss)
        return self.Cs[int(np.argmin(losses))]

    def fit(self, probs, targets, groups=None, persons=None) -> "StackingVote":
        import warnings
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        probs, targets, gp, rows, folds = self._prepare(probs, targets, groups, persons)
        X, y = self.features(gp[:, rows]), targets[rows]
        people = np.arange(len(y)) if persons is None else np.asarray(persons)[rows]
        n_classes = self.n_classes = probs.shape[2]
        cf = np.zeros((len(y), n_classes))
        # one BLAS thread: small problems, and on a shared CPU spinning BLAS threads make lbfgs 20-50x slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            for k in range(int(folds.max()) + 1):
                held = folds == k
                C = self._choose_C(X[~held], y[~held], people[~held])
                self.fold_Cs.append(C)
                cf[held] = self._proba(self._model(C).fit(X[~held], y[~held]), X[held], n_classes)
            self.C = self._choose_C(X, y, people)
            self.model = self._model(self.C).fit(X, y)
        self._finish(probs, targets, rows, cf)
        return self

    def _predict(self, gp: np.ndarray) -> np.ndarray:
        X = self.features(gp)
        out = np.full((gp.shape[1], self.n_classes), np.nan)
        have = np.isfinite(X).all(axis=1) & available(gp).any(axis=0)
        if have.any():
            out[have] = self._proba(self.model, X[have], self.n_classes)
        return out

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"groups": self.group_labels, "C": self.C, "fold_Cs": self.fold_Cs,
                             "crossfit_macro_f1": self.crossfit_score, "soft_macro_f1": self.soft_score,
                             "fallback": self.fallback}
        if self.model is not None:
            coef = self.model.coef_.reshape(len(self.model.classes_), len(self.group_labels), -1)
            d["mean_abs_coef_per_group"] = {g: float(np.abs(coef[:, i]).mean()) for i, g in enumerate(self.group_labels)}
            d["own_class_coef_per_group"] = {g: float(np.mean([coef[j, i, c] for j, c in enumerate(self.model.classes_)]))
                                             for i, g in enumerate(self.group_labels)}
            d["coef"] = self.model.coef_.tolist()
            d["intercept"] = self.model.intercept_.tolist()
        return d

    def __repr__(self) -> str:
        return f"StackingVote(C={self.C}, groups={len(self.group_labels)}" + (", fallback=soft)" if self.fallback else ")")


class GreedySelectionVote(_CrossFitted):
    """Caruana ensemble selection with replacement on macro F1, bagged over person folds."""

    name = "greedy_selection"

    def __init__(self, n_iterations: int = 25, cv_folds: int = 5, seed: int = 0):
        super().__init__(cv_folds, seed)
        if int(n_iterations) < 1:
            raise ValueError(f"greedy_selection: n_iterations must be >= 1, got {n_iterations}")
        self.n_iterations = int(n_iterations)
        self.group_weights: np.ndarray | None = None
        self.fold_counts: list[list[int]] = []

    def select(self, gp: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Selection counts per group (the best prefix of the greedy trajectory)."""
        n_groups, n_classes = gp.shape[0], gp.shape[2]
        counts = np.zeros(n_groups)
        best_counts, best = counts.copy(), -1.0
        for _ in range(self.n_iterations):
            step_best, step_g = -1.0, 0
            for g in range(n_groups):
                trial = counts.copy()
                trial[g] += 1
                score = _score(weighted_mean(gp, trial), y, n_classes)
                if score > step_best:
                    step_best, step_g = score, g
            counts[step_g] += 1
            if step_best > best:
                best, best_counts = step_best, counts.copy()
        return best_counts

    def fit(self, probs, targets, groups=None, persons=None) -> "GreedySelectionVote":
        probs, targets, gp, rows, folds = self._prepare(probs, targets, groups, persons)
        g_rows, y = gp[:, rows], targets[rows]
        cf = np.zeros((len(y), probs.shape[2]))
        weights = []
        for k in range(int(folds.max()) + 1):
            held = folds == k
            counts = self.select(g_rows[:, ~held], y[~held])
            self.fold_counts.append([int(c) for c in counts])
            w = counts / counts.sum()
            weights.append(w)
            cf[held] = weighted_mean(g_rows[:, held], w)
        self.group_weights = np.mean(weights, axis=0)
        self._finish(probs, targets, rows, cf)
        return self

    def _predict(self, gp: np.ndarray) -> np.ndarray:
        return weighted_mean(gp, self.group_weights)

    @property
    def weights(self) -> np.ndarray | None:
        """Per member: its group's weight shared among the group's members (what the report lists)."""
        if self.group_weights is None or self.member_group is None:
            return None
        sizes = np.bincount(self.member_group)
        return self.group_weights[self.member_group] / sizes[self.member_group]

    def describe(self) -> dict[str, Any]:
        return {"groups": self.group_labels,
                "weights": None if self.group_weights is None else
                {g: float(w) for g, w in zip(self.group_labels, self.group_weights)},
                "selection_counts_per_fold": self.fold_counts, "crossfit_macro_f1": self.crossfit_score,
                "soft_macro_f1": self.soft_score, "fallback": self.fallback}

    def __repr__(self) -> str:
        w = None if self.group_weights is None else [round(float(x), 3) for x in self.group_weights]
        return f"GreedySelectionVote(weights={w}" + (", fallback=soft)" if self.fallback else ")")
