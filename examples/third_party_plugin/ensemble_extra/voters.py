"""Voter: ``factory(**params) -> Voter`` with ``fit(probs (M, N, C), targets (N,)) -> self`` and
``voter(probs (M, N, C)) -> (N, C)``. ``probs`` holds M members' probabilities with NaN rows where a member
has no prediction (out of fold, each member predicts only its own validation people). The contract: finite
rows summing to 1 on every image some member predicted, NaN rows on the images no member predicted (the
engine masks those itself as well, so the figures stay right; ``check_component`` checks the rule).
``fit`` may also take ``groups`` and ``persons`` (docs/ARCHITECTURE.md); the engine passes only what it accepts."""
from __future__ import annotations

import warnings

import numpy as np


class MedianVote:
    """Per-class median over the members that predicted an image, renormalised (robust to one bad member)."""

    def fit(self, probs: np.ndarray, targets: np.ndarray) -> "MedianVote":
        return self                  # nothing to learn

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        with warnings.catch_warnings():      # an image no member predicted: nanmedian warns and gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(probs, axis=0)
        total = med.sum(axis=-1, keepdims=True)
        return med / np.where(total > 0, total, 1.0)     # NaN rows stay NaN

    def __repr__(self) -> str:
        return "MedianVote()"
