"""torch implementations behind :mod:`ensemble_core_plugins.losses` (imported only when a loss is built).

Every loss takes ``(logits (N, C), targets)`` with ``targets`` int64 class ids
``(N,)`` or soft targets ``(N, C)`` whose rows sum to 1 (CutMix / MixUp).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def as_soft(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    if targets.dim() == 1:
        return F.one_hot(targets.long(), num_classes).to(torch.float32)
    return targets.to(torch.float32)


class CrossEntropy(nn.Module):
    def __init__(self, label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("class_weights", None if class_weights is None
                             else torch.tensor(class_weights, dtype=torch.float32))

    def forward(self, logits, targets):
        targets = targets.long() if targets.dim() == 1 else targets.float()
        return F.cross_entropy(logits.float(), targets, weight=self.class_weights,
                               label_smoothing=self.label_smoothing)


class OrdinalCrossEntropy(nn.Module):
    """Cross-entropy against a Gaussian over neighbouring class indices: for ordered classes (fine age bins),
    class ``k``'s target puts weight ``exp(-(j - k)^2 / (2 sigma^2))`` on class ``j`` (rows normalised), so a
    near miss costs less than a far one (label-distribution learning). Soft targets (CutMix / MixUp) are
    spread the same way."""

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        if not float(sigma) > 0:
            raise ValueError(f"ordinal_cross_entropy: sigma must be > 0 (in classes), got {sigma!r}")
        self.sigma = float(sigma)
        self._kernel: torch.Tensor | None = None

    def kernel(self, num_classes: int, device) -> torch.Tensor:
        if self._kernel is None or self._kernel.shape[0] != num_classes or self._kernel.device != device:
            idx = torch.arange(num_classes, dtype=torch.float32, device=device)
            k = torch.exp(-(idx[:, None] - idx[None, :]) ** 2 / (2 * self.sigma ** 2))
            self._kernel = k / k.sum(dim=1, keepdim=True)
        return self._kernel

    def forward(self, logits, targets):
        logp = logits.float().log_softmax(dim=1)
        y = as_soft(targets, logits.shape[1]).to(logp.device) @ self.kernel(logits.shape[1], logp.device)
        return -(y * logp).sum(dim=1).mean()


class SoftF1(nn.Module):
    """1 - macro F1 computed from softmax probabilities (differentiable)."""

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = eps

    def forward(self, logits, targets):
        probs = logits.float().softmax(dim=1)
        y = as_soft(targets, logits.shape[1]).to(probs.device)
        tp = (probs * y).sum(0)
        fp = (probs * (1 - y)).sum(0)
        fn = ((1 - probs) * y).sum(0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.eps)
        return 1 - f1.mean()


class Focal(nn.Module):
    """Focal loss: cross-entropy down-weighted by (1 - p_true)^gamma."""

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.gamma = float(gamma)
        self.register_buffer("class_weights", None if class_weights is None
                             else torch.tensor(class_weights, dtype=torch.float32))

    def forward(self, logits, targets):
        logp = logits.float().log_softmax(dim=1)
        y = as_soft(targets, logits.shape[1]).to(logp.device)
        per_class = -y * (1 - logp.exp()).pow(self.gamma) * logp
        if self.class_weights is not None:
            per_class = per_class * self.class_weights
        return per_class.sum(1).mean()


class WeightedSum(nn.Module):
    """sum_i weight_i * loss_i(logits, targets)."""

    def __init__(self, losses: Sequence[nn.Module], weights: Sequence[float], names: Sequence[str]):
        super().__init__()
        self.terms = nn.ModuleList(losses)
        self.weights = [float(w) for w in weights]
        self.names = list(names)

    def forward(self, logits, targets):
        total = 0.0
        for w, loss in zip(self.weights, self.terms):
            total = total + w * loss(logits, targets)
        return total


def build_weighted_sum(terms: Sequence[Mapping[str, Any] | str], registry) -> WeightedSum:
    """``registry`` is injected by ``Registry.build`` (the registry the sum itself came from)."""
    from ensemble_core.errors import TrainingError
    from ensemble_core.registry import normalize_ref

    if not terms:
        raise TrainingError("loss weighted_sum: params.terms is empty; give e.g. "
                            "[{name: cross_entropy, weight: 0.3}, {name: soft_f1, weight: 0.7}]")
    losses, weights, names = [], [], []
    for i, term in enumerate(terms):
        weight = term.get("weight", 1.0) if isinstance(term, Mapping) else 1.0
        ref = normalize_ref({k: v for k, v in term.items() if k != "weight"} if isinstance(term, Mapping) else term)
        if ref["name"] == "weighted_sum":
            raise TrainingError(f"loss weighted_sum: terms[{i}] is itself weighted_sum; list its terms directly")
        losses.append(registry.build("loss", ref, field=f"loss.params.terms[{i}]"))
        weights.append(weight)
        names.append(ref["name"])
    return WeightedSum(losses, weights, names)
