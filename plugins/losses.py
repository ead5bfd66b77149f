"""Built-in losses. Implementations live in :mod:`ensemble_core_plugins.loss_modules` (torch).

The seed's ``0.3 * cross-entropy + 0.7 * F1-loss`` as recipe data::

    loss: {name: weighted_sum, params: {terms: [{name: cross_entropy, weight: 0.3},
                                                {name: soft_f1, weight: 0.7}]}}
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_IMPL = "ensemble_core_plugins.loss_modules"


def cross_entropy(label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None):
    from ensemble_core_plugins.loss_modules import CrossEntropy
    return CrossEntropy(label_smoothing=label_smoothing, class_weights=class_weights)


def label_smoothing(smoothing: float = 0.1, class_weights: Sequence[float] | None = None):
    from ensemble_core_plugins.loss_modules import CrossEntropy
    return CrossEntropy(label_smoothing=smoothing, class_weights=class_weights)


def ordinal_cross_entropy(sigma: float = 1.0):
    from ensemble_core_plugins.loss_modules import OrdinalCrossEntropy
    return OrdinalCrossEntropy(sigma=sigma)


def soft_f1(eps: float = 1e-7):
    from ensemble_core_plugins.loss_modules import SoftF1
    return SoftF1(eps=eps)


def focal(gamma: float = 2.0, class_weights: Sequence[float] | None = None):
    from ensemble_core_plugins.loss_modules import Focal
    return Focal(gamma=gamma, class_weights=class_weights)


def weighted_sum(terms: Sequence[Mapping[str, Any] | str] = (), registry=None):
    """``registry`` is injected by ``Registry.build`` (the terms are built from the same registry)."""
    from ensemble_core_plugins.loss_modules import build_weighted_sum
    if registry is None:
        raise TypeError("weighted_sum builds its terms from a registry: build it with "
                        "registry.build('loss', {'name': 'weighted_sum', 'params': {...}})")
    return build_weighted_sum(terms, registry)


@hookimpl
def ensemble_register_losses():
    return [
        ComponentSpec("cross_entropy", "loss", f"{__name__}:cross_entropy",
                      description="cross-entropy; int or soft targets (label_smoothing, class_weights)"),
        ComponentSpec("label_smoothing", "loss", f"{__name__}:label_smoothing",
                      description="cross-entropy with label smoothing (smoothing)"),
        ComponentSpec("ordinal_cross_entropy", "loss", f"{__name__}:ordinal_cross_entropy",
                      description="cross-entropy against a Gaussian over neighbouring classes (sigma, in "
                                  "classes): ordered classes such as fine age bins"),
        ComponentSpec("soft_f1", "loss", f"{__name__}:soft_f1",
                      description="1 - differentiable macro F1 from softmax probabilities"),
        ComponentSpec("focal", "loss", f"{__name__}:focal",
                      description="focal loss (gamma) for hard / rare classes"),
        ComponentSpec("weighted_sum", "loss", f"{__name__}:weighted_sum",
                      description="sum of losses: terms [{name, params, weight}] (seed: 0.3 CE + 0.7 soft_f1)",
                      nested={"terms": "loss"}),
    ]
