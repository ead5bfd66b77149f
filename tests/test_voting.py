"""Voters: NaN handling, each voter's rule, and the weighted search never losing to soft voting."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ensemble_core.metrics import confusion, macro_f1
from ensemble_core.ensemble.voting import GeometricMean, HardVote, SoftVote, Voter, WeightedSoftVote
from ensemble_core.manager import get_registry

VOTER_NAMES = ["soft", "hard", "weighted_soft", "geometric_mean"]


def random_probs(rng, m, n, c):
    p = rng.dirichlet(np.ones(c), size=(m, n))
    return p.astype(np.float64)


def noisy_members(rng, n=400, c=3, qualities=(0.9, 0.4, 0.1)):
    """Members whose probabilities lean towards the truth by different amounts."""
    targets = rng.integers(0, c, size=n)
    onehot = np.eye(c)[targets]
    probs = np.stack([q * onehot + (1 - q) * rng.dirichlet(np.ones(c), size=n) for q in qualities])
    return probs, targets


def test_builtin_voters_are_registered():
    assert set(VOTER_NAMES) <= set(get_registry()["voter"].names())


@pytest.mark.parametrize("name", get_registry()["voter"].names())
def test_every_registered_voter_keeps_the_contract(name):
    """Builds with no parameters, fits, votes (N, C) rows summing to 1, and survives pickling."""
    rng = np.random.default_rng(0)
    probs = random_probs(rng, 3, 20, 4)
    targets = rng.integers(0, 4, 20)
    voter = get_registry().build("voter", name)
    assert isinstance(voter, Voter)
    out = voter.fit(probs, targets)(probs)
    assert out.shape == (20, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(voter))(probs), out)


@pytest.mark.parametrize("name", get_registry()["executor"].names())
def test_every_registered_executor_keeps_the_contract(name):
    from ensemble_core.executors import Executor

    executor = get_registry().build("executor", name)
    assert isinstance(executor, Executor)
    assert executor.run([]) == []


@pytest.mark.parametrize("name", VOTER_NAMES)
def test_voters_average_only_available_members(name):
    rng = np.random.default_rng(1)
    probs = random_probs(rng, 3, 6, 3)
    probs[1, :3] = np.nan          # member 1 missing on images 0..2
    probs[:, 5] = np.nan           # nobody predicts image 5
    voter = get_registry().build("voter", name)
    targets = rng.integers(0, 3, 6)
    out = voter.fit(probs, targets)(probs)
    assert np.isnan(out[5]).all()
    assert np.isfinite(out[:5]).all()
    # images 0..2 are voted over members 0 and 2 only (member 1's rows are NaN there)
    if name != "weighted_soft":  # fitted weights are per member, so only the unweighted voters compare directly
        np.testing.assert_allclose(out[:3], voter(probs[[0, 2], :3]), atol=1e-9)


def test_soft_vote_is_the_mean_of_available_members():
    probs = np.array([[[0.8, 0.2], [np.nan, np.nan]],
                      [[0.4, 0.6], [0.3, 0.7]]])
    out = SoftVote()(probs)
    np.testing.assert_allclose(out, [[0.6, 0.4], [0.3, 0.7]])


def test_hard_vote_majority_and_tie_break():
    probs = np.array([[[0.6, 0.4, 0.0]],
                      [[0.55, 0.45, 0.0]],
                      [[0.0, 1.0, 0.0]]])
    assert HardVote()(probs).argmax(axis=1).tolist() == [0]   # 2 votes to 1 despite class 1's larger mean
    tie = np.array([[[0.51, 0.49]], [[0.0, 1.0]]])              # one vote each; class 1 has the larger mean
    assert HardVote()(tie).argmax(axis=1).tolist() == [1]


def test_geometric_mean_is_normalised_product():
    probs = np.array([[[0.5, 0.5]], [[0.9, 0.1]]])
    out = GeometricMean()(probs)
    expected = np.sqrt([0.45, 0.05])
    np.testing.assert_allclose(out[0], expected / expected.sum())


def test_weighted_soft_given_weights_are_used_and_checked():
    probs = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(WeightedSoftVote(weights=[3, 1])(probs), [[0.75, 0.25]])
    with pytest.raises(ValueError, match="2 weight"):
        WeightedSoftVote(weights=[1, 1])(np.concatenate([probs, probs]))
    with pytest.raises(ValueError, match="2 weight"):
        WeightedSoftVote(weights=[1, 1]).fit(np.concatenate([probs, probs, probs]), np.zeros(1, int))
    with pytest.raises(ValueError, match="non-negative"):
        WeightedSoftVote(weights=[-1, 2])
    with pytest.raises(ValueError, match="call fit"):
        WeightedSoftVote()(probs)


@pytest.mark.parametrize("seed", range(8))
def test_weighted_search_is_never_worse_than_soft_on_its_fit_data(seed):
    rng = np.random.default_rng(seed)
    probs, targets = noisy_members(rng, n=300, c=int(rng.integers(2, 5)),
                                   qualities=tuple(rng.uniform(0.0, 0.6, size=int(rng.integers(2, 5)))))
    # out-of-fold style: every member misses a random half of the images
    probs[rng.random(probs.shape[:2]) < 0.5] = np.nan
    voter = WeightedSoftVote(n_candidates=50, seed=seed).fit(probs, targets)
    rows = ~np.isnan(SoftVote()(probs)).any(axis=1)
    soft_f1 = macro_f1(targets[rows], SoftVote()(probs)[rows].argmax(1), probs.shape[2])
    weighted_f1 = macro_f1(targets[rows], voter(probs)[rows].argmax(1), probs.shape[2])
    assert weighted_f1 >= soft_f1
    assert voter.fit_score == pytest.approx(weighted_f1)
    assert voter.uniform_score == pytest.approx(soft_f1)


def test_weighted_search_favours_the_accurate_member():
    rng = np.random.default_rng(3)
    probs, targets = noisy_members(rng, n=600, c=3, qualities=(0.5, 0.0, 0.0))
    voter = WeightedSoftVote(seed=0).fit(probs, targets)
    assert voter.weights.argmax() == 0
    assert voter.fit_score > voter.uniform_score


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(5):
        t = rng.integers(0, 6, 200)
        p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 5, 200))
        assert macro_f1(t, p, 6) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    assert confusion([0, 1, 1], [0, 1, 0], 2).tolist() == [[1, 0], [1, 1]]


def test_weighted_soft_shares_weights_within_groups():
    """Per-backbone weights: folds of one backbone share its weight (given or searched)."""
    rng = np.random.default_rng(5)
    # 2 backbones x 3 folds; backbone "good" leans to the truth, "bad" is noise
    good, targets = noisy_members(rng, n=300, c=3, qualities=(0.5, 0.5, 0.5))
    bad, _ = noisy_members(rng, n=300, c=3, qualities=(0.0, 0.0, 0.0))
    probs = np.concatenate([good, bad])
    fold = rng.integers(0, 3, 300)
    for m in range(6):                       # k-fold out of fold: member m predicts only its fold
        probs[m, fold != m % 3] = np.nan
    groups = ["good"] * 3 + ["bad"] * 3
    given = WeightedSoftVote(weights=[3, 1]).fit(probs, targets, groups)
    np.testing.assert_allclose(given.weights, [3, 3, 3, 1, 1, 1])
    searched = WeightedSoftVote(seed=0).fit(probs, targets, groups)
    assert searched.group_weights.shape == (2,)
    assert searched.weights[0] == searched.weights[1] == searched.weights[2] > searched.weights[3]
    assert searched.fit_score >= searched.uniform_score
    with pytest.raises(ValueError, match="group label"):
        WeightedSoftVote().fit(probs, targets, groups[:5])
