"""The member's loaders: the validation loader is built once and, with workers, keeps them between
passes (validation runs every epoch, twice with EMA); batches are identical on every pass."""
from __future__ import annotations

import numpy as np
import torch

from helpers_train import load_demo, person_split, single_torch_thread, tiny_member  # noqa: F401
from ensemble_core.manager import get_registry
from ensemble_core.train.components import build_task
from ensemble_core.train.inputs import MemberLoaders, select_samples


def loaders_for(demo_dir, workers: int) -> MemberLoaders:
    member = tiny_member("all18", num_workers=workers)
    ds = load_demo(demo_dir)
    registry = get_registry()
    samples = select_samples(build_task(member, registry), ds, person_split(ds.train))
    return MemberLoaders(samples, member, registry, None, seed=42)


def batches(loader) -> list[np.ndarray]:
    return [images.numpy() for images, _ in loader]


def test_val_loader_is_reused_and_keeps_its_workers(demo_dir):
    loaders = loaders_for(demo_dir, workers=2)
    first = loaders.val_loader()
    assert loaders.val_loader() is first and first.persistent_workers
    a, b = batches(first), batches(loaders.val_loader())
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    order = np.arange(len(loaders.train_set))
    assert not loaders.train_loader(order).persistent_workers      # training order is rebuilt per epoch


def test_without_workers_nothing_persists(demo_dir):
    loaders = loaders_for(demo_dir, workers=0)
    assert not loaders.val_loader().persistent_workers
    x, y = next(iter(loaders.val_loader()))
    assert x.dtype == torch.float32 and len(x) == len(y)
