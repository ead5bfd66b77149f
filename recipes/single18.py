"""One 18-class model per split (mask x gender x age in one head), 3 shuffle splits, soft vote.

    fire recipes/single18.py run [--data_dir DIR] [--preset seed|small|auto] [--defaults.epochs=2]

Uses the seed's gender/age model settings (tf_efficientnet_b3_ns, 0.3 cross-entropy + 0.7 F1,
Adam lr 1e-5) and its per-gender 60+ thresholds (men 58, women 57).
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import CE_PLUS_F1, SEED_AGE_THRESHOLDS, Preset, recipe_header

NAME = "single18"


def build(p: Preset) -> dict:
    return {
        **recipe_header(NAME),
        "defaults": p.member_defaults(),
        "tasks": [{
            "task": "all18",
            "backbone": p.backbone("factor"),
            "label_transform": SEED_AGE_THRESHOLDS,
            "augmentations": ["RandomBrightnessContrast", "HueSaturationValue", "CLAHE"],
            "loss": CE_PLUS_F1,
            "optimizer": {"name": "adam", "params": {"lr": p.factor_lr, "weight_decay": 1e-5}},
            "scheduler": {"name": "cosine_warm_restarts",
                          "params": {"T_0": 10, "T_mult": 1, "eta_min": p.factor_eta_min}},
        }],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) the 18-class members, vote, write runs/single18/submission.csv and report.md.")
