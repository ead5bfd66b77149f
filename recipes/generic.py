"""Any data set, any label space: one joint model per backbone over k group folds, soft vote.

    fire recipes/generic.py run --dataset image_folder --data_dir DIR      # DIR/train/<class>/<img>, DIR/eval/<img>
    fire recipes/generic.py run --dataset csv --data_dir DIR \\
        --dataset.params.factors='{"category": ["shirt", "shoe"], "colour": ["red", "blue"]}' \\
        --dataset.params.group_column=person                                # DIR/train.csv, DIR/eval/<img>
    fire recipes/generic.py run --dataset image_folder                     # the tiny ImageFolder demo
    fire recipes/generic.py recipe --preset seed                           # print the recipe data

The ``joint`` task has one head over every final class of the data set's label space (a single factor's
classes for an ImageFolder set, the product of the factors for a CSV set), so the recipe needs nothing
competition-specific. Folds are group k-folds (``kfold``, the data set's group column: a person, or each
image on its own), stratified by class. Two backbones by default (the preset's ``factor`` and ``second``);
``--tasks.0.backbones='[resnet18]'`` changes them. The submission is the data set's format
(``image,label`` with the class name for ``image_folder``).
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import Preset, recipe_header

NAME = "generic"
N_FOLDS = 3


def build(p: Preset) -> dict:
    return {
        **recipe_header(NAME, split={"name": "kfold", "params": {"n_splits": N_FOLDS}}),
        "dataset": {"name": "image_folder"},
        "defaults": {"load_size": list(p.crop), "image_size": list(p.crop), "epochs": p.epochs,
                     "batch_size": p.batch_size, "tta": ["hflip"], "num_workers": p.num_workers},
        "tasks": [{
            "task": "joint",
            "backbones": [p.backbone("factor"), p.backbone("second")],
            "augmentations": ["RandomBrightnessContrast", "HueSaturationValue"],
            "loss": "cross_entropy",
            "optimizer": {"name": "adamw", "params": {"lr": p.factor_lr if p.pretrained else p.mask_lr,
                                                      "weight_decay": 0.01}},
            "scheduler": {"name": "cosine_warm_restarts", "params": {"T_0": 10, "T_mult": 1,
                                                                     "eta_min": p.factor_eta_min}},
        }],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) one joint model per backbone and fold on any data set (--dataset image_folder, "
                 "csv, mask_competition), vote, write runs/generic/submission.csv and report.md.")
