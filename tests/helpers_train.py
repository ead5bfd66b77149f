"""Helpers for the training tests: tiny members on the demo data and person-level splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ensemble_core.recipe import MemberSpec, Recipe

# fast on 2 CPU cores: ~100k-parameter model, 32x24 images
TINY_FIELDS = dict(backbone="test_efficientnet", image_size=[32, 24], batch_size=16, epochs=1,
                   optimizer={"name": "adamw", "params": {"lr": 3e-3}})


def tiny_member(task="mask", seed: int = 42, **fields) -> MemberSpec:
    entry = {"task": task, **TINY_FIELDS, **fields}
    return Recipe.from_dict({"name": "t", "seed": seed, "tasks": [entry],
                             "split": {"name": "shuffle", "params": {"n_splits": 1}}}).plan()[0]


def person_split(train_df, val_fraction: float = 0.25, seed: int = 0):
    """Row indices (train, val) with no person on both sides."""
    persons = np.array(sorted(train_df["person"].unique()))
    rng = np.random.default_rng(seed)
    val_people = set(rng.choice(persons, max(1, int(len(persons) * val_fraction)), replace=False).tolist())
    is_val = train_df["person"].isin(val_people).to_numpy()
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def load_demo(demo_dir: Path):
    from ensemble_core.data.layout import load_dataset
    return load_dataset(demo_dir)


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """One torch thread for the training tests: on a shared 2-core machine an oversubscribed
    2-thread run is several times slower. Restored after the module."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def recording_loss_registry():
    """(registry with the built-ins plus loss ``recording(wraps="cross_entropy")``, the list its calls go to).

    ``recording`` computes the ``wraps`` loss and records each training call (no gradient: not recorded)
    as ``{"wraps", "width" (logits columns), "targets"}``.
    """
    import torch

    from ensemble_core import ComponentSpec, hookimpl
    from ensemble_core.manager import build_catalog, get_registry

    calls: list = []

    class RecordingLoss(torch.nn.Module):
        def __init__(self, wraps: str):
            super().__init__()
            self.inner, self.wraps = get_registry().build("loss", wraps), wraps

        def forward(self, logits, targets):
            if logits.requires_grad:
                calls.append({"wraps": self.wraps, "width": int(logits.shape[1]),
                              "targets": targets.detach().cpu().clone()})
            return self.inner(logits, targets)

    def recording(wraps: str = "cross_entropy"):
        return RecordingLoss(wraps)

    class Plugin:
        @hookimpl
        def ensemble_register_losses(self):
            return [ComponentSpec("recording", "loss", recording, description="test: records its training calls")]

    return build_catalog(extra_plugins=[Plugin()], autoload=False).registry, calls
