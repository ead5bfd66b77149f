"""Built-in person-level splitters. Implementations live in :mod:`ensemble_core.data.splits`."""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_M = "ensemble_core.data.splits"


@hookimpl
def ensemble_register_splitters():
    return [
        ComponentSpec("shuffle", "splitter", f"{_M}:ShuffleSplitter",
                      "n_splits random person-level splits (val_fraction), stratified by gender x age class"),
        ComponentSpec("kfold", "splitter", f"{_M}:KFoldSplitter",
                      "person-level stratified k-fold (sklearn StratifiedGroupKFold), gender x age class"),
    ]
