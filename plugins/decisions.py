"""Built-in decision rules: how the combined 18-class probabilities become one class per image.

Implementations live in :mod:`ensemble_core.ensemble.decision` (fitting, cross-fitted estimate,
confidence matching); the factories are lazy strings so that listing never imports numpy-heavy code.
"""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_D = "ensemble_core.ensemble.decision"


@hookimpl
def ensemble_register_decisions():
    return [
        ComponentSpec("argmax", "decision", f"{_D}:ArgmaxDecision",
                      "arg-max of the combined 18-class probabilities (nothing fitted)"),
        ComponentSpec("class_offsets", "decision", f"{_D}:ClassOffsets",
                      "an additive log-offset per class, fitted on out-of-fold predictions for macro F1 "
                      "(coordinate ascent on a bounded grid, ties to zero)"),
        ComponentSpec("prior_power", "decision", f"{_D}:PriorPower",
                      "subtract alpha x log(training prior); alpha fitted on out-of-fold macro F1"),
        ComponentSpec("factor_offsets", "decision", f"{_D}:FactorOffsets",
                      "log-offsets on the factors (mask, gender, age per gender): 11 parameters, less overfit"),
    ]
