"""Decision rules: turn the combined 18-class probabilities into one class per image.

The pipeline used to take the arg-max. A *decision* is fitted on the ensemble's out-of-fold (OOF)
18-class probabilities with their truth, then applied to eval. The built-ins
(``python -m ensemble_core list decisions``) all add a fitted offset to each class's log-probability:

- ``argmax``: no offset (the old behaviour);
- ``class_offsets``: one offset per class (18), fitted by coordinate ascent on macro F1;
- ``prior_power``: ``-alpha * log(training prior)``, ``alpha`` fitted (one parameter);
- ``factor_offsets``: offsets on the factors (mask 3, gender 2, age 3 per gender 6): fewer parameters.

Protocol (what a ``decision`` plugin's factory returns)::

    d = factory(**params)
    d.fit(log_probs (N, 18), targets (N,)) -> d       # OOF, finite log-probabilities
    d(log_probs (M, 18)) -> scores (M, 18)            # arg-max of the scores is the decision
    d.fitted() -> dict                                # JSON-able fitted parameters (decision.json)
    d.load(dict) -> d                                 # the same parameters back, without fitting

Every decision's factory also takes ``force`` (apply it even when its cross-fitted estimate is not
better than arg-max), ``match_confidence`` and ``cv_folds``; :func:`decide` handles those.

**Honest estimate.** :func:`decide` cross-fits the rule: the OOF people are dealt into ``cv_folds``
person folds; the rule is fitted on the OOF images of k-1 folds and predicts the held-out fold, over
all folds. That cross-fitted macro F1 is the estimate shown; the in-sample figure (fitted and scored
on the same images) is recorded in ``decision.json`` as such and never shown as the estimate. When
the cross-fitted figure is not above arg-max's on the same images — or is above, but in fewer than
90 % of person-level bootstrap replicates of those images (the gain is noise) — arg-max is kept (and
the report says so) unless ``force: true``. Arg-max is also kept, and the rule reported, when the eval
vote is not the vote the OOF figures describe (refit members blended in on eval: ``eval_vote_differs``,
recorded as ``held_back``).

**Confidence mismatch.** With shuffle splits most OOF images are predicted by one member, while an
eval image is the mean of every member: averaged probabilities are less confident, so offsets
fitted on OOF log-probabilities are too large for eval. With ``match_confidence`` (default on) the
eval log-probabilities are divided by a temperature ``T`` chosen so that the eval images' mean top
probability equals the OOF images' mean top probability (no answers involved: both statistics come
from predictions only). ``T`` and both statistics are written to ``decision.json``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ensemble_core.metrics import confusion, f1_per_class, macro_f1
from ensemble_core.errors import EnsembleCoreError
from ensemble_core.registry import normalize_ref
from ensemble_core.labels import N_CLASSES, class_names, decode_class

LOG_EPS = 1e-7
COMMON_PARAMS = ("force", "match_confidence", "cv_folds")
BOOTSTRAP_SUPPORT = 0.9      # share of person-bootstrap replicates in which the cross-fitted rule must beat arg-max
BOOTSTRAP_REPLICATES = 300


class DecisionError(EnsembleCoreError):
    """A decision rule cannot be fitted or applied (bad OOF data, a decision.json of another run)."""


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), LOG_EPS, 1.0))


def _scores_f1(scores: np.ndarray, targets: np.ndarray) -> float:
    return macro_f1(targets, scores.argmax(axis=1), scores.shape[1])


def _shift_predictor(base: np.ndarray, column: np.ndarray):
    """``value -> argmax(base + value * column)``, fast when ``column`` is 0/1 (one shift for a set of classes):
    the best class inside and outside the set are fixed, so each value is one comparison per row."""
    support = column != 0
    if support.all() or not support.any() or not np.all(column[support] == column[support][0]):
        return lambda value: (base + value * column).argmax(axis=1)
    step = float(column[support][0])
    inside, outside = np.flatnonzero(support), np.flatnonzero(~support)
    in_arg = inside[base[:, inside].argmax(axis=1)]
    in_max = base[np.arange(len(base)), in_arg]
    out_arg = outside[base[:, outside].argmax(axis=1)]
    out_max = base[np.arange(len(base)), out_arg]
    gap = out_max - in_max
    return lambda value: np.where(value * step > gap, in_arg, out_arg)


# ---------------------------------------------------------------- the built-in rules
class OffsetDecision:
    """Scores = log-probabilities + ``basis @ theta``; ``theta`` fitted for macro F1 by coordinate ascent.

    Each coordinate is tried on ``grid`` (its current value too); a value replaces the current one only
    when it scores higher, or scores the same and is closer to zero (ties go to zero), for ``sweeps``
    sweeps or until a sweep changes nothing.
    """

    name = "offsets"
    n_classes = N_CLASSES          # the pipeline sets the run's label space (n_classes, class_names)
    class_names: list[str] | None = None

    def _names(self) -> list[str]:
        return list(self.class_names) if self.class_names is not None else class_names()

    def __init__(self, force: bool = False, match_confidence: bool = True, cv_folds: int = 5,
                 grid_max: float = 2.0, grid_step: float = 0.1, sweeps: int = 3):
        if not grid_max > 0 or not grid_step > 0 or int(sweeps) < 1 or int(cv_folds) < 2:
            raise ValueError(f"{self.name}: grid_max and grid_step must be > 0, sweeps >= 1 and cv_folds >= 2; got "
                             f"grid_max={grid_max}, grid_step={grid_step}, sweeps={sweeps}, cv_folds={cv_folds}")
        self.force, self.match_confidence, self.cv_folds = bool(force), bool(match_confidence), int(cv_folds)
        self.grid_max, self.grid_step, self.sweeps = float(grid_max), float(grid_step), int(sweeps)
        self.theta: np.ndarray | None = None

    # subclasses define the basis (18, P) and the grid of one coordinate
    def basis(self, targets: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def grid(self) -> np.ndarray:
        n = int(round(self.grid_max / self.grid_step))
        return np.round(np.arange(-n, n + 1) * self.grid_step, 10)

    def offsets(self) -> np.ndarray:
        if self.theta is None:
            raise DecisionError(f"decision {self.name!r} is not fitted; call fit() on out-of-fold predictions first")
        return self._basis @ self.theta

    def fit(self, log_p: np.ndarray, targets: np.ndarray) -> "OffsetDecision":
        targets = np.asarray(targets, dtype=np.int64)
        self._basis = self.basis(targets)
        theta = np.zeros(self._basis.shape[1])
        grid = self.grid()
        scores = log_p + self._basis @ theta
        best = _scores_f1(scores, targets)
        for _ in range(self.sweeps):
            changed = False
            for p in range(len(theta)):
                column = self._basis[:, p]
                base = scores - theta[p] * column
                predict = _shift_predictor(base, column)
                for value in grid:
                    if value == theta[p]:
                        continue
                    score = macro_f1(targets, predict(value), self.n_classes)
                    if score > best + 1e-12 or (abs(score - best) <= 1e-12 and abs(value) < abs(theta[p])):
                        best, theta[p], changed = score, value, True
                scores = base + theta[p] * column
            if not changed:
                break
        self.theta = theta
        self.in_sample_f1 = best
        return self

    def __call__(self, log_p: np.ndarray) -> np.ndarray:
        return np.asarray(log_p, dtype=np.float64) + self.offsets()

    def fitted(self) -> dict[str, Any]:
        offsets = self.offsets()
        return {"theta": [float(t) for t in self.theta],
                "class_offsets": {n: float(o) for n, o in zip(self._names(), offsets)}}

    def load(self, fitted: Mapping[str, Any]) -> "OffsetDecision":
        theta = np.asarray(fitted.get("theta", []), dtype=np.float64)
        self._basis = self._loaded_basis(fitted)
        if theta.shape != (self._basis.shape[1],) or not np.isfinite(theta).all():
            raise DecisionError(f"decision {self.name!r}: fitted theta must be {self._basis.shape[1]} finite numbers, "
                                f"got {fitted.get('theta')!r}")
        self.theta = theta
        return self

    def _loaded_basis(self, fitted: Mapping[str, Any]) -> np.ndarray:
        return self.basis(None)


class ArgmaxDecision(OffsetDecision):
    """Arg-max of the combined probabilities (nothing fitted)."""

    name = "argmax"

    def __init__(self, force: bool = False, match_confidence: bool = True, cv_folds: int = 5):
        super().__init__(force=force, match_confidence=match_confidence, cv_folds=cv_folds)

    def basis(self, targets):
        return np.zeros((self.n_classes, 0))

    def fit(self, log_p, targets):
        self._basis, self.theta = self.basis(None), np.zeros(0)
        self.in_sample_f1 = _scores_f1(np.asarray(log_p), np.asarray(targets))
        return self

    def load(self, fitted):
        self._basis, self.theta = self.basis(None), np.zeros(0)
        return self

    def fitted(self):
        return {}


class ClassOffsets(OffsetDecision):
    """An additive log-offset per class (18 parameters)."""

    name = "class_offsets"

    def basis(self, targets):
        return np.eye(self.n_classes)


class FactorOffsets(OffsetDecision):
    """Offsets on the factors: mask (3) + gender (2) + age per gender (2 x 3) = 11 parameters."""

    name = "factor_offsets"
    PARAMS = ([f"mask={m}" for m in ("mask", "incorrect", "normal")] + [f"gender={g}" for g in ("male", "female")]
              + [f"age={a}|{g}" for g in ("male", "female") for a in ("<30", "30-59", "60+")])

    def basis(self, targets):
        if self.n_classes != N_CLASSES:
            raise DecisionError(f"decision 'factor_offsets' is for the mask competition's 18 classes (mask, gender, "
                                f"age per gender); this run has {self.n_classes} classes: use class_offsets, "
                                f"prior_power or argmax")
        m, g, a = decode_class(np.arange(N_CLASSES))
        b = np.zeros((N_CLASSES, 11))
        b[np.arange(N_CLASSES), m] = 1
        b[np.arange(N_CLASSES), 3 + g] = 1
        b[np.arange(N_CLASSES), 5 + g * 3 + a] = 1
        return b

    def fitted(self):
        out = super().fitted()
        out["factor_offsets"] = {n: float(t) for n, t in zip(self.PARAMS, self.theta)}
        return out


class PriorPower(OffsetDecision):
    """Scores = log p - alpha * log(training prior); alpha fitted on a grid 0..``alpha_max`` (ties to 0).

    The prior is the class frequency of the images it is fitted on (the OOF truth)."""

    name = "prior_power"

    def __init__(self, force: bool = False, match_confidence: bool = True, cv_folds: int = 5,
                 alpha_max: float = 1.5, grid_step: float = 0.05):
        super().__init__(force=force, match_confidence=match_confidence, cv_folds=cv_folds,
                         grid_max=alpha_max, grid_step=grid_step, sweeps=1)
        self.prior: np.ndarray | None = None

    def grid(self):
        n = int(round(self.grid_max / self.grid_step))
        return np.round(np.arange(0, n + 1) * self.grid_step, 10)

    def basis(self, targets):
        counts = np.bincount(targets, minlength=self.n_classes).astype(np.float64)
        self.prior = (counts + 1.0) / (counts.sum() + self.n_classes)      # add-one: no log(0)
        return -np.log(self.prior)[:, None]

    def _loaded_basis(self, fitted):
        prior = fitted.get("prior")
        p = np.asarray(prior if prior is not None else [], dtype=np.float64)
        if p.shape != (self.n_classes,) or not (p > 0).all():
            raise DecisionError(f"decision 'prior_power': fitted prior must be {self.n_classes} positive numbers, "
                                f"got {prior!r}")
        self.prior = p
        return -np.log(p)[:, None]

    def fitted(self):
        return {**super().fitted(), "alpha": float(self.theta[0]), "prior": [float(x) for x in self.prior]}


# ---------------------------------------------------------------- confidence and cross-fitting
def mean_confidence(log_p: np.ndarray, temperature: float = 1.0) -> float:
    z = log_p / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return float((1.0 / e.sum(axis=1)).mean())       # the top class has exp(0) = 1


def confidence_temperature(log_p: np.ndarray, target: float, lo: float = 0.05, hi: float = 20.0) -> float:
    """``T`` such that softmax(log_p / T) has mean top probability ``target`` (bisection on log T)."""
    if len(log_p) == 0:
        return 1.0
    if mean_confidence(log_p, lo) <= target:
        return lo
    if mean_confidence(log_p, hi) >= target:
        return hi
    a, b = np.log(lo), np.log(hi)
    for _ in range(60):
        mid = 0.5 * (a + b)
        if mean_confidence(log_p, float(np.exp(mid))) > target:
            a = mid
        else:
            b = mid
    return float(np.exp(0.5 * (a + b)))


def person_folds(persons: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id per row; every person's rows in one fold; persons dealt at random (seeded) into ``n_folds``."""
    persons = np.asarray(persons).astype(str)
    unique, inverse = np.unique(persons, return_inverse=True)
    k = min(int(n_folds), len(unique))
    if k < 2:
        raise DecisionError(f"cross-fitting needs at least 2 people in the out-of-fold images, got {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_person = np.empty(len(unique), dtype=np.int64)
    fold_of_person[order] = np.arange(len(unique)) % k
    return fold_of_person[inverse]


def paired_support(targets: np.ndarray, pred_rule: np.ndarray, pred_base: np.ndarray, persons: np.ndarray,
                   replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0, n_classes: int = N_CLASSES) -> float:
    """Share of person-level bootstrap replicates in which ``pred_rule`` has a higher macro F1 than ``pred_base``.

    People (not images) are resampled with replacement, so a person's photos stay together."""
    people, inverse = np.unique(np.asarray(persons).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(people)))
    ends = np.append(starts[1:], len(order))
    wins = 0
    for _ in range(int(replicates)):
        pick = rng.integers(0, len(people), len(people))
        rows = np.concatenate([order[starts[i]:ends[i]] for i in pick])
        y = targets[rows]
        wins += macro_f1(y, pred_rule[rows], n_classes) > macro_f1(y, pred_base[rows], n_classes)
    return wins / max(int(replicates), 1)


def build_decision(ref: Any, registry, label_space=None):
    """The decision rule of ``ref``, told the run's classes (``label_space``; None: the 18 mask classes)."""
    ref = normalize_ref(ref if ref is not None else "argmax")
    try:
        rule = registry.build("decision", ref, field="decision")
    except ValueError as exc:
        raise DecisionError(f"decision {ref['name']!r}: {exc}") from exc
    if label_space is not None:
        rule.n_classes, rule.class_names = label_space.n_classes, label_space.class_names()
    return rule


def crossfit(ref: Any, log_p: np.ndarray, targets: np.ndarray, persons: np.ndarray, n_folds: int,
             registry, seed: int = 0, label_space=None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Cross-fitted predictions of rule ``ref``: (pred (N,), fold (N,), fitted params per fold).

    A fold's rows are predicted by a rule fitted only on the other folds' rows (other people)."""
    folds = person_folds(persons, n_folds, seed)
    pred = np.full(len(targets), -1, dtype=np.int64)
    fitted = []
    for k in range(int(folds.max()) + 1):
        held = folds == k
        rule = build_decision(ref, registry, label_space).fit(log_p[~held], targets[~held])
        pred[held] = rule(log_p[held]).argmax(axis=1)
        fitted.append(rule.fitted())
    return pred, folds, fitted


# ---------------------------------------------------------------- the run's identity
def recipe_hash(recipe_dict: Mapping[str, Any]) -> str:
    """Hash of the recipe without the fields that do not change the predictions a decision is fitted on."""
    data = {k: v for k, v in recipe_dict.items() if k not in ("decision", "executor")}
    if normalize_ref(data.get("dataset") or "mask_competition") == {"name": "mask_competition", "params": {}}:
        data.pop("dataset", None)   # the default data set: the hash of a run made before the field existed
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_identity(recipe, members, voter_ref: Mapping[str, Any]) -> dict[str, Any]:
    return {"recipe": recipe.name, "recipe_hash": recipe_hash(recipe.to_dict()), "voter": dict(voter_ref),
            "members": sorted(m.run_name for m in members)}


def read_decision_file(path: str | Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    """A ``decision.json`` checked to belong to the run ``identity`` (same recipe hash and voter)."""
    path = Path(path)
    if not path.is_file():
        raise DecisionError(f"decision file {path} not found; pass the decision.json of this run folder")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DecisionError(f"decision file {path} is not JSON ({exc}); pass a decision.json written by a run") from exc
    run = data.get("run") if isinstance(data, Mapping) else None
    if not isinstance(run, Mapping) or "recipe_hash" not in run or "decision" not in data:
        raise DecisionError(f"decision file {path} has no 'run.recipe_hash' / 'decision'; it was not written by "
                            f"ensemble_core. Refit with --decision NAME instead")
    if run["recipe_hash"] != identity["recipe_hash"]:
        raise DecisionError(f"decision file {path} was fitted on another run: recipe {run.get('recipe')!r} with "
                            f"recipe hash {run['recipe_hash']}, but this run's recipe {identity['recipe']!r} has "
                            f"recipe hash {identity['recipe_hash']}. Refit it on this run with --decision "
                            f"{data['decision'].get('name', 'NAME')} instead")
    if dict(run.get("voter") or {}) != dict(identity["voter"]):
        raise DecisionError(f"decision file {path} was fitted on the votes of voter {run.get('voter')}, but this "
                            f"ensemble uses voter {identity['voter']}; refit with --decision "
                            f"{data['decision'].get('name', 'NAME')}")
    return data


# ---------------------------------------------------------------- the pipeline's entry point
@dataclass
class DecisionOutcome:
    requested: dict                     # the decision ref asked for
    applied: str                        # name of the rule actually used
    kept_argmax: bool                   # requested rule was not applied (estimate not better, or held back)
    reason: str
    fitted: dict                        # fitted parameters of the applied rule
    requested_fitted: dict              # fitted parameters of the requested rule (even when not applied)
    n_oof: int
    folds: int
    argmax_oof_f1: float
    crossfit_oof_f1: float | None       # the requested rule's cross-fitted estimate
    bootstrap_support: float | None     # share of person-bootstrap replicates where it beats arg-max
    in_sample_oof_f1: float | None      # NOT an estimate: fitted and scored on the same images
    per_class_before: list[float]
    per_class_after: list[float]        # cross-fitted predictions of the requested rule
    temperature: float
    oof_confidence: float | None
    eval_confidence: float | None
    eval_pred: np.ndarray | None        # the decision on eval
    eval_pred_argmax: np.ndarray | None
    eval_pred_rule: np.ndarray | None   # the requested rule on eval, applied or not (for the report)
    from_file: str | None = None
    crossfit_fitted: list = field(default_factory=list)
    held_back: str | None = None        # why a rule whose estimate is better was not applied (eval_vote_differs)

    def record(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        return {"decision": self.requested, "applied": self.applied, "kept_argmax": self.kept_argmax,
                "reason": self.reason, "fitted": self.fitted, "requested_fitted": self.requested_fitted,
                "temperature": self.temperature, "oof_mean_confidence": self.oof_confidence,
                "eval_mean_confidence": self.eval_confidence,
                "estimate": {"kind": "cross-fitted by person", "folds": self.folds, "n_oof_images": self.n_oof,
                             "argmax_macro_f1": self.argmax_oof_f1, "crossfit_macro_f1": self.crossfit_oof_f1,
                             "bootstrap_support": self.bootstrap_support, "required_support": BOOTSTRAP_SUPPORT},
                "in_sample_macro_f1_not_an_estimate": self.in_sample_oof_f1,
                "crossfit_fold_params": self.crossfit_fitted, "from_file": self.from_file,
                "held_back": self.held_back, "run": dict(identity)}


def check_oof(oof18: np.ndarray, truth18: np.ndarray, rows: np.ndarray, where: str, label_space=None) -> None:
    if not rows.any():
        raise DecisionError(f"{where}: no training image has an out-of-fold prediction from every task, so a "
                            f"decision cannot be fitted; every task needs members whose oof.npz covers its images "
                            f"(or use --decision argmax)")
    present = np.unique(truth18[rows])
    n_classes = N_CLASSES if label_space is None else label_space.n_classes
    absent = sorted(set(range(n_classes)) - set(present.tolist()))
    if absent:
        names = class_names() if label_space is None else label_space.class_names()
        raise DecisionError(f"{where}: class(es) {', '.join(f'{c} {names[c]}' for c in absent)} never occur in the "
                            f"out-of-fold truth ({int(rows.sum())} images), so a decision cannot learn their offset; "
                            f"use --decision argmax, or train with splits whose validation people cover every class")


def check_finite(probs: np.ndarray | None, ids: np.ndarray | None, what: str) -> None:
    if probs is None:
        return
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        first = ids[bad][:3].tolist() if ids is not None else np.flatnonzero(bad)[:3].tolist()
        raise DecisionError(f"{what}: {int(bad.sum())} image(s) have NaN / infinite 18-class probabilities (e.g. "
                            f"{first}); a member's eval.npz has NaN rows. Delete that member's DONE and rerun to "
                            f"predict them again")


def decide(ref: Any, oof18: np.ndarray, truth18: np.ndarray, persons: np.ndarray, eval18: np.ndarray | None,
           eval_ids: np.ndarray | None = None, *, registry, stored: Mapping[str, Any] | None = None,
           stored_path: str | None = None, seed: int = 0, label_space=None,
           eval_vote_differs: str | None = None) -> DecisionOutcome:
    """Fit rule ``ref`` on the OOF rows (finite rows of ``oof18``), estimate it by cross-fitting, apply to eval.

    ``stored`` (a checked ``decision.json``) applies its fitted parameters instead of fitting.
    ``eval_vote_differs`` says why the eval vote is not the vote the OOF rows describe (refit members blended in
    on eval only): the estimate is then not about the predictions the rule would change, so a rule whose
    estimate is better is still not applied unless forced (``force: true``)."""
    ref = normalize_ref(stored["decision"] if stored is not None else (ref if ref is not None else "argmax"))
    check_finite(eval18, eval_ids, "eval")
    rows = np.isfinite(oof18).all(axis=1)
    log_oof, y, people = log_probs(oof18[rows]), truth18[rows], np.asarray(persons)[rows]
    n_classes = N_CLASSES if label_space is None else label_space.n_classes
    rule = build_decision(ref, registry, label_space)
    argmax_pred = log_oof.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    before = f1_per_class(confusion(y, argmax_pred, n_classes)).tolist()
    argmax_f1 = macro_f1(y, argmax_pred, n_classes) if len(y) else 0.0
    is_argmax = ref["name"] == "argmax"
    if not is_argmax:
        check_oof(oof18, truth18, rows, f"decision {ref['name']!r}", label_space)
    crossfit_f1, in_sample, after, fold_params, support = None, None, before, [], None
    folds = 0
    if stored is not None:
        rule.load(stored.get("requested_fitted") or {})
        est = stored.get("estimate") or {}
        crossfit_f1, folds = est.get("crossfit_macro_f1"), int(est.get("folds") or 0)
        in_sample = stored.get("in_sample_macro_f1_not_an_estimate")
    else:
        rule.fit(log_oof, y) if len(y) else rule.load({})
        if not is_argmax:
            cf_pred, fold_of, fold_params = crossfit(ref, log_oof, y, people, rule.cv_folds, registry, seed,
                                                     label_space)
            folds = int(fold_of.max()) + 1
            crossfit_f1 = macro_f1(y, cf_pred, n_classes)
            after = f1_per_class(confusion(y, cf_pred, n_classes)).tolist()
            in_sample = getattr(rule, "in_sample_f1", None)
            support = (paired_support(y, cf_pred, argmax_pred, people, seed=seed, n_classes=n_classes)
                       if crossfit_f1 > argmax_f1 else 0.0)
    better = crossfit_f1 is not None and crossfit_f1 > argmax_f1 and (support or 0.0) >= BOOTSTRAP_SUPPORT
    held_back = better and stored is None and eval_vote_differs is not None
    apply = is_argmax or (better and not held_back) or rule.force
    if is_argmax:
        reason = "arg-max of the combined probabilities"
    elif stored is not None:
        apply = bool(stored.get("applied") == ref["name"]) or rule.force
        reason = f"fitted parameters read from {stored_path}" + ("" if apply else "; that fit kept arg-max")
        if apply and eval_vote_differs is not None:
            reason += (f" (applied as that file says, although {eval_vote_differs}: its estimate is of the split "
                       f"members' vote alone)")
    elif better:
        reason = (f"cross-fitted OOF macro F1 {crossfit_f1:.4f} > arg-max {argmax_f1:.4f} on the same "
                  f"{len(y)} images (ahead in {support:.0%} of person-bootstrap replicates): "
                  + ("applied" if not held_back else
                     f"but {eval_vote_differs}, so the estimate is not of the eval vote it would change: "
                     + ("applied anyway (force: true)" if rule.force else
                        "kept arg-max (set force: true in the decision params to apply it)")))
    else:
        why = ("is not above" if crossfit_f1 <= argmax_f1 else
               f"is above but only in {support:.0%} of person-bootstrap replicates (needs "
               f"{BOOTSTRAP_SUPPORT:.0%}) of")
        reason = (f"cross-fitted OOF macro F1 {crossfit_f1:.4f} {why} arg-max {argmax_f1:.4f} on the same "
                  f"{len(y)} images: " + ("applied anyway (force: true)" if rule.force else
                                          "kept arg-max (set force: true in the decision params to apply it)"))
    temperature, oof_conf, eval_conf = 1.0, None, None
    eval_pred = eval_argmax = eval_rule = None
    if len(y):
        oof_conf = mean_confidence(log_oof)
    if eval18 is not None:
        log_eval = log_probs(eval18)
        eval_argmax = log_eval.argmax(axis=1)
        eval_conf = mean_confidence(log_eval)
        eval_pred = eval_rule = eval_argmax
        if not is_argmax:
            if rule.match_confidence and oof_conf is not None:
                temperature = (float(stored.get("temperature", 1.0)) if stored is not None
                               else confidence_temperature(log_eval, oof_conf))
            eval_rule = rule(log_eval / temperature).argmax(axis=1)
            if apply:
                eval_pred = eval_rule
    applied_fitted = rule.fitted() if apply else {}
    return DecisionOutcome(
        requested=ref, applied=ref["name"] if apply else "argmax", kept_argmax=not apply, reason=reason,
        fitted=applied_fitted, requested_fitted=rule.fitted(), n_oof=int(len(y)), folds=folds,
        argmax_oof_f1=float(argmax_f1), crossfit_oof_f1=crossfit_f1, bootstrap_support=support,
        in_sample_oof_f1=in_sample,
        per_class_before=[float(x) for x in before], per_class_after=[float(x) for x in after],
        temperature=float(temperature), oof_confidence=oof_conf, eval_confidence=eval_conf,
        eval_pred=eval_pred, eval_pred_argmax=eval_argmax, eval_pred_rule=eval_rule, from_file=stored_path,
        crossfit_fitted=fold_params, held_back=eval_vote_differs if held_back and not rule.force else None)


# ---------------------------------------------------------------- figures for metrics.json / report.md
ANSWERS_FILE = Path("eval") / "answers.csv"


def eval_answers(data_dir: str | Path, eval_ids: np.ndarray | None) -> np.ndarray | None:
    """True eval classes in ``eval_ids`` order when the data folder has ``eval/answers.csv`` (else None).

    Answers are only ever *reported*; nothing is fitted or chosen on them."""
    path = Path(data_dir) / ANSWERS_FILE
    if eval_ids is None or not path.is_file():
        return None
    from ensemble_core.ensemble.scoring import read_answers
    ans = read_answers(path, "answers").set_index("ImageID")["ans"]
    ids = np.asarray(eval_ids).astype(str)
    if set(ans.index) != set(ids.tolist()):
        return None
    return ans.loc[ids].to_numpy().astype(np.int64)


def decision_metrics(outcome: DecisionOutcome, answers: np.ndarray | None, label_space=None) -> dict[str, Any]:
    names = class_names() if label_space is None else label_space.class_names()
    n_classes = len(names)
    out: dict[str, Any] = {
        "requested": outcome.requested, "applied": outcome.applied, "kept_argmax": outcome.kept_argmax,
        "reason": outcome.reason, "fitted": outcome.requested_fitted, "temperature": outcome.temperature,
        "oof_mean_confidence": outcome.oof_confidence, "eval_mean_confidence": outcome.eval_confidence,
        "n_oof_images": outcome.n_oof, "folds": outcome.folds,
        "argmax_macro_f1": outcome.argmax_oof_f1, "crossfit_macro_f1": outcome.crossfit_oof_f1,
        "bootstrap_support": outcome.bootstrap_support, "from_file": outcome.from_file,
        "held_back": outcome.held_back,
        "per_class_f1_before": dict(zip(names, outcome.per_class_before)),
        "per_class_f1_after_crossfit": dict(zip(names, outcome.per_class_after)),
    }
    if answers is not None and outcome.eval_pred is not None:
        before = f1_per_class(confusion(answers, outcome.eval_pred_argmax, n_classes))
        after = f1_per_class(confusion(answers, outcome.eval_pred_rule, n_classes))
        out["eval_answers"] = {
            "note": "eval/answers.csv of the data folder: reported only, never used to fit or choose",
            "argmax_macro_f1": macro_f1(answers, outcome.eval_pred_argmax, n_classes),
            "rule_macro_f1": macro_f1(answers, outcome.eval_pred_rule, n_classes),
            "submission_macro_f1": macro_f1(answers, outcome.eval_pred, n_classes),
            "per_class_f1_argmax": dict(zip(names, before.tolist())),
            "per_class_f1_rule": dict(zip(names, after.tolist())),
        }
    return out


def render_decision(d: Mapping[str, Any]) -> list[str]:
    """The report's decision section (markdown lines)."""
    def f(x):
        return "n/a" if x is None else f"{x:.4f}"

    req = d["requested"]
    lines = [f"## Decision ({len(d['per_class_f1_before'])}-class probabilities -> class)", "",
             f"- requested: `{req['name']}`" + (f" {req['params']}" if req.get("params") else "")
             + f"; applied: `{d['applied']}`", f"- {d['reason']}"]
    if req["name"] == "argmax":
        return lines + [""]
    ev = d.get("eval_answers")
    lines += ["", f"Out-of-fold figures are on the {d['n_oof_images']} training images every task predicted out of "
                  f"fold. The rule's figure is **cross-fitted by person** ({d['folds']} folds: fitted on the other "
                  f"folds' people, scored on the held-out fold), never the in-sample fit.", "",
              "| | arg-max | " + f"`{req['name']}` |", "|---|---|---|",
              f"| OOF macro F1 (cross-fitted) | {f(d['argmax_macro_f1'])} | {f(d['crossfit_macro_f1'])} |"]
    if ev:
        lines.append(f"| eval macro F1 (answers; reported only) | {f(ev['argmax_macro_f1'])} | "
                     f"{f(ev['rule_macro_f1'])}" + ("" if d["applied"] != "argmax" else " (not applied)") + " |")
    lines += ["", f"Confidence matching: OOF mean top probability {f(d['oof_mean_confidence'])}, eval "
                  f"{f(d['eval_mean_confidence'])}; eval log-probabilities divided by T = {d['temperature']:.3f} "
                  f"before the rule (T < 1 sharpens eval to the OOF confidence; chosen from predictions only).", ""]
    offsets = (d.get("fitted") or {}).get("class_offsets")
    extra = {k: v for k, v in (d.get("fitted") or {}).items() if k in ("alpha", "factor_offsets")}
    if extra:
        lines += [f"Fitted: `{extra}`", ""]
    head = "| class | offset | OOF F1 arg-max | OOF F1 after (cross-fitted) |"
    sep = "|---|---|---|---|"
    if ev:
        head += " eval F1 arg-max | eval F1 after |"
        sep += "---|---|"
    lines += [head, sep]
    for i, name in enumerate(d["per_class_f1_before"]):
        off = "n/a" if offsets is None else f"{offsets[name]:+.2f}"
        row = (f"| {i} {name} | {off} | {f(d['per_class_f1_before'][name])} | "
               f"{f(d['per_class_f1_after_crossfit'][name])} |")
        if ev:
            row += f" {f(ev['per_class_f1_argmax'][name])} | {f(ev['per_class_f1_rule'][name])} |"
        lines.append(row)
    return lines + [""]
