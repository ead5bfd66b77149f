"""The plugin module named by the entry point. Keep it import-light: factories are lazy strings."""
from ensemble_core import ComponentSpec, hookimpl


@hookimpl
def ensemble_register_losses():
    return [ComponentSpec(
        name="poly1_cross_entropy", kind="loss", factory="ensemble_extra.components:Poly1CrossEntropy",
        description="PolyLoss (Leng et al. 2022): cross-entropy + epsilon * (1 - p_target)")]


@hookimpl
def ensemble_register_voters():
    return [ComponentSpec(
        name="median", kind="voter", factory="ensemble_extra.components:MedianVote",
        description="per-class median of member probabilities, renormalised (robust to one bad member)")]
