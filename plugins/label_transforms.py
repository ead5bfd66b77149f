"""Built-in label transforms: how age is encoded for training and merged back to 3 classes.

Metrics always use the original labels; see :mod:`ensemble_core.tasks`.
"""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_M = "ensemble_core.tasks"


@hookimpl
def ensemble_register_label_transforms():
    return [
        ComponentSpec("age3", "label_transform", f"{_M}:age3", "identity: <30 / 30-59 / 60+"),
        ComponentSpec("age_threshold", "label_transform", f"{_M}:age_threshold",
                      "per-gender 60+ threshold: ages >= male / female train as 60+ (seed: male=58, female=57)"),
        ComponentSpec("age_bins5", "label_transform", f"{_M}:age_bins5",
                      "5 age bins <=20, <=29, <=45, <=57, 58+; summed back to 3 classes (0,1 | 2,3 | 4)"),
        ComponentSpec("age_bins", "label_transform", f"{_M}:age_bins",
                      "any age bins (edges, merge); default 14 bins of 3 years <=20 .. <=57, 58+, summed back to 3 "
                      "classes (0-3 | 4-12 | 13): for an ordinal age loss"),
    ]
