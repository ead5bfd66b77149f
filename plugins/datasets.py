"""Built-in data layouts (the recipe's ``dataset``). Implementations live in :mod:`ensemble_core.data.formats`."""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_M = "ensemble_core.data.formats"


@hookimpl
def ensemble_register_datasets():
    return [
        ComponentSpec("mask_competition", "dataset", f"{_M}:mask_competition",
                      "the mask competition: train/train.csv + person folders, eval/info.csv; 18 classes; "
                      "submission ImageID,ans"),
        ComponentSpec("image_folder", "dataset", f"{_M}:image_folder",
                      "DIR/train/<class name>/<image>, DIR/eval/<image>; one factor; submission image,label "
                      "(class name)"),
        ComponentSpec("csv", "dataset", f"{_M}:csv_layout",
                      "a train CSV (image column, one column per factor, optional group column), an eval CSV "
                      "or folder; submission columns configurable"),
    ]
