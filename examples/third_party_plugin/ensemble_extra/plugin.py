"""The plugin module named by the entry point (pyproject.toml). ensemble_core calls each ``@hookimpl`` function
named after a hook (``ensemble_register_<kind>s``, docs/ARCHITECTURE.md) and registers what it returns.

Keep this module import-light: factories are lazy ``"module:attr"`` strings, imported only when a recipe uses
the component, so ``python -m ensemble_core list`` never imports torch through your plugin. A misspelt hook or a
hook function without ``@hookimpl`` stops ensemble_core with one line naming it."""
from ensemble_core import ComponentSpec, hookimpl


@hookimpl
def ensemble_register_losses():
    return [ComponentSpec(
        name="poly1_cross_entropy", kind="loss", factory="ensemble_extra.losses:Poly1CrossEntropy",
        description="PolyLoss (Leng et al. 2022): cross-entropy + epsilon * (1 - p_target)")]


@hookimpl
def ensemble_register_voters():
    return [ComponentSpec(
        name="median", kind="voter", factory="ensemble_extra.voters:MedianVote",
        description="per-class median of member probabilities, renormalised (robust to one bad member)")]


@hookimpl
def ensemble_register_augmentations():
    return [ComponentSpec(
        name="random_grey", kind="augmentation", factory="ensemble_extra.augmentations:RandomGrey",
        description="with probability p, the photo in grey (3 channels kept)")]


@hookimpl
def ensemble_register_backbones():
    return [ComponentSpec(
        name="tiny_cnn", kind="backbone", factory="ensemble_extra.backbones:TinyCNN",
        description="a small conv net trained from scratch (width, depth, dropout)")]


@hookimpl
def ensemble_register_weights():
    return [ComponentSpec(
        name="team_folder", kind="weights", factory="ensemble_extra.weights:TeamFolderWeights",
        description="state dicts from a team's shared folder, <architecture>.safetensors (offline clusters)")]
