"""Components of the example plugin. Imported only when a recipe uses them."""
from __future__ import annotations

import numpy as np


def Poly1CrossEntropy(epsilon: float = 1.0, reduction: str = "mean"):
    import torch
    import torch.nn.functional as F

    class _Poly1CrossEntropy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.epsilon = epsilon

        def forward(self, logits, targets):
            logp = F.log_softmax(logits.float(), dim=-1)
            if targets.ndim == 1:
                targets = F.one_hot(targets.long(), logits.shape[-1]).float()
            ce = -(targets * logp).sum(-1)
            pt = (targets * logp.exp()).sum(-1)
            loss = ce + self.epsilon * (1.0 - pt)
            return loss.mean() if reduction == "mean" else loss.sum()

    return _Poly1CrossEntropy()


class MedianVote:
    """NaN-aware median over members; rows where no member predicts stay NaN."""

    def fit(self, probs, targets):
        return self

    def __call__(self, probs):
        probs = np.asarray(probs, dtype=np.float64)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(probs, axis=0)
            total = med.sum(axis=-1, keepdims=True)
            return med / np.where(total > 0, total, 1.0)
