"""Tiny whole runs: one 18-class member on the demo data, seconds on a CPU (compare / tune tests)."""
from __future__ import annotations

from typing import Any

TINY_RECIPE: dict[str, Any] = {
    "version": 1,
    "name": "tiny18",
    "seed": 42,
    "split": {"name": "shuffle", "params": {"n_splits": 1, "val_fraction": 0.25}},
    "voter": {"name": "soft"},
    "defaults": {"image_size": [32, 24], "batch_size": 16, "epochs": 1, "tta": [],
                 "optimizer": {"name": "adamw", "params": {"lr": 3e-3}}},
    "tasks": [{"task": "all18", "backbone": "test_efficientnet"}],
}


def tiny_recipe(**overrides: Any) -> dict[str, Any]:
    """TINY_RECIPE with dotted overrides (``**{"defaults.epochs": 2}``)."""
    from ensemble_core.recipe import Recipe
    return Recipe.from_dict(TINY_RECIPE).override(**overrides).to_dict()
