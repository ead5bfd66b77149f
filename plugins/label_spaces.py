"""Built-in label spaces. Implementations live in :mod:`ensemble_core.labelspace`."""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_M = "ensemble_core.labelspace"


@hookimpl
def ensemble_register_label_spaces():
    return [
        ComponentSpec("mask_status", "label_space", f"{_M}:mask_status",
                      "the mask competition's 18 classes: mask 3 x gender 2 x age 3 (age given gender; age bins "
                      "from the age in years)"),
        ComponentSpec("factors", "label_space", f"{_M}:label_space_from_params",
                      "any product of factors: name, factors {factor: [class names]}, conditional {factor: given}"),
    ]
