"""Built-in voters: how the members of one task are combined.

Implementations live in :mod:`ensemble_core.ensemble.voting`; the factories
are lazy strings so that listing voters never imports numpy-heavy code.
"""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_VOTING = "ensemble_core.ensemble.voting"
_SELECTION = "ensemble_core.ensemble.selection"


@hookimpl
def ensemble_register_voters():
    return [
        ComponentSpec("soft", "voter", f"{_VOTING}:SoftVote",
                      "mean of member probabilities (NaN-aware: over the members that predict each image)"),
        ComponentSpec("hard", "voter", f"{_VOTING}:HardVote",
                      "majority of member arg-max classes; ties broken by mean probability"),
        ComponentSpec("weighted_soft", "voter", f"{_VOTING}:WeightedSoftVote",
                      "weighted mean; weights given, or searched on out-of-fold predictions for macro F1 "
                      "(never worse than soft on the fitted data)"),
        ComponentSpec("geometric_mean", "voter", f"{_VOTING}:GeometricMean",
                      "normalised geometric mean of member probabilities"),
        ComponentSpec("stacking", "voter", f"{_SELECTION}:StackingVote",
                      "multinomial logistic regression on the member groups' out-of-fold log-probabilities, "
                      "cross-fitted by person, C by inner CV (falls back to soft when not better)"),
        ComponentSpec("greedy_selection", "voter", f"{_SELECTION}:GreedySelectionVote",
                      "Caruana ensemble selection with replacement on out-of-fold macro F1, bagged over person "
                      "folds (falls back to soft when not better)"),
    ]
