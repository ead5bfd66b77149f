"""Heterogeneous members in one run, shaped like the competition's winning solution: three backbone
families on the 18 classes, 5 person-level folds, 0.3 cross-entropy + 0.7 F1 loss, a CutMix that always
pastes in a 60+ face, and a weighted soft vote whose weights are searched on out-of-fold predictions.

    fire recipes/hetero.py run [--data_dir DIR] [--preset seed|small|auto]
    fire recipes/hetero.py run --voter.params.weights='[6,3,1]'     # the winner's fixed 6:3:1

Weights are per backbone (its 5 folds share one), in recipe order; searched ones too.
seed preset: tf_efficientnet_lite0 (ImageNet weights from pip), eca_nfnet_l0 and vit_base_patch16_384 (fed
384x384, its fixed size) from timm's hub: those two need network or a filled Hugging Face cache, and validate
says so before any training.
small preset: resnet10t, mobilenetv3_small_050, test_convnext from scratch.
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import AGE_60_PLUS_CLASSES, CE_PLUS_F1, SEED_AGE_THRESHOLDS, Preset, recipe_header

NAME = "hetero"
FINE_TUNE_LR = 1e-4                            # pretrained backbones; from scratch uses the preset's rate
FIXED_INPUT = {"vit_base_patch16_384": [384, 384]}


def member_entry(p: Preset, role: str) -> dict:
    backbone = p.backbone(role)
    entry = {"task": "all18", "backbone": backbone}
    if backbone["name"] in FIXED_INPUT:
        entry["image_size"] = FIXED_INPUT[backbone["name"]]
    return entry


def build(p: Preset) -> dict:
    return {
        **recipe_header(NAME, split={"name": "kfold", "params": {"n_splits": 5}}, voter="weighted_soft"),
        "defaults": {
            **p.image_fields(), "epochs": p.epochs, "batch_size": p.batch_size, "tta": [],
            "num_workers": p.num_workers,
            "label_transform": SEED_AGE_THRESHOLDS,
            "augmentations": ["RandomBrightnessContrast", "HueSaturationValue", "HorizontalFlip"],
            "batch_augmentation": {"name": "class_cutmix", "params": {"target_class": AGE_60_PLUS_CLASSES,
                                                                      "prob": 0.5}},
            "loss": CE_PLUS_F1,
            "optimizer": {"name": "adamw", "params": {"lr": FINE_TUNE_LR if p.pretrained else p.factor_lr,
                                                      "weight_decay": 0.01}},
            "scheduler": {"name": "cosine", "params": {"warmup_epochs": 1.0}},
        },
        "tasks": [member_entry(p, role) for role in ("factor", "second", "third")],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) every backbone x fold, fit the vote weights out of fold, write runs/hetero/*.")
