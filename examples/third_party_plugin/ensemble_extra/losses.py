"""Loss: ``factory(**params) -> torch.nn.Module`` called as ``loss(logits (N, C), targets)``, where targets are
int class ids ``(N,)`` or soft targets ``(N, C)`` (a batch augmentation such as CutMix gives soft ones).
The factory's keyword parameters are what a recipe may set: ``loss: {name: poly1_cross_entropy, params:
{epsilon: 2.0}}``."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Poly1CrossEntropy(torch.nn.Module):
    """PolyLoss (Leng et al. 2022): cross-entropy + epsilon * (1 - p_target)."""

    def __init__(self, epsilon: float = 1.0, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"poly1_cross_entropy: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.epsilon, self.reduction = float(epsilon), reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=-1)
        if targets.ndim == 1:
            targets = F.one_hot(targets.long(), logits.shape[-1]).float()
        ce = -(targets * logp).sum(-1)
        pt = (targets * logp.exp()).sum(-1)
        loss = ce + self.epsilon * (1.0 - pt)
        return loss.mean() if self.reduction == "mean" else loss.sum()
