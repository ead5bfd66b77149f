"""One backbone with 8 outputs (mask 3 + gender 2 + age 3) and a loss per head, 3 shuffle splits, soft vote.

    fire recipes/multihead.py run [--data_dir DIR] [--preset seed|small|auto] [--defaults.epochs=2]

The age head trains with the seed's per-gender 60+ thresholds (men 58, women 57);
mask uses cross-entropy, gender and age the seed's 0.3 cross-entropy + 0.7 F1 loss.
Its probabilities are the product of the three heads, so it votes and combines like an 18-class model.
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import CE_PLUS_F1, SEED_AGE_THRESHOLDS, Preset, recipe_header

NAME = "multihead"


def build(p: Preset) -> dict:
    return {
        **recipe_header(NAME),
        "defaults": p.member_defaults(),
        "tasks": [{
            "task": {"name": "multihead",
                     "params": {"head_losses": {"mask": "cross_entropy", "gender": CE_PLUS_F1, "age": CE_PLUS_F1}}},
            "backbone": p.backbone("factor"),
            "label_transform": SEED_AGE_THRESHOLDS,
            "augmentations": ["RandomBrightnessContrast", "HueSaturationValue", "CLAHE"],
            "optimizer": {"name": "adam", "params": {"lr": p.factor_lr, "weight_decay": 1e-5}},
            "scheduler": {"name": "cosine_warm_restarts",
                          "params": {"T_0": 10, "T_mult": 1, "eta_min": p.factor_eta_min}},
        }],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) the multihead members, vote, write runs/multihead/submission.csv and report.md.")
