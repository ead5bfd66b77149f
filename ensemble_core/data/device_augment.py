"""Augmentation on the training device (``augment_on: device``).

The loader workers send uint8 ``(N, C, H, W)`` batches (preprocess, worker-only augmentations and the
resize to ``image_size``); on the device :class:`DeviceAugment` scales them to 0..1, runs the device
forms of the member's augmentations (kind ``device_augmentation``, one module per augmentation, every
sample with its own parameters) and normalises. Augmentations without a device form stay on the
workers and therefore run *before* the device ones, whatever their place in the list.
"""
from __future__ import annotations

from typing import Any, Sequence

from ensemble_core.registry import normalize_ref

AUGMENT_ON = ("workers", "device")


def split_augmentations(refs: Sequence[Any] | None, registry) -> tuple[list[dict], list[dict]]:
    """``(on_workers, on_device)``: the augmentation refs without a device form, and those with one."""
    workers, device = [], []
    for ref in refs or []:
        ref = normalize_ref(ref)
        (device if ref["name"] in registry["device_augmentation"] else workers).append(ref)
    return workers, device


def build_device_augment(refs: Sequence[dict], registry, inputs=None):
    """The :class:`DeviceAugment` for ``refs`` (each must have a device form), normalising with ``inputs``
    (an :class:`~ensemble_core.data.images.InputConfig`; default ImageNet's statistics)."""
    modules = [registry.build("device_augmentation", ref, field="augmentations") for ref in refs]
    return DeviceAugment(modules, inputs)


def _module_base():
    import torch
    return torch.nn.Module


class DeviceAugment(_module_base()):
    """uint8 batch on the device -> augmented, normalised float batch (the member's statistics, as the workers)."""

    def __init__(self, modules: Sequence[Any], inputs=None):
        import torch

        from ensemble_core.data.images import DEFAULT_INPUTS

        super().__init__()
        inputs = inputs or DEFAULT_INPUTS
        self.augment = torch.nn.ModuleList(modules)
        self.register_buffer("mean", torch.tensor(inputs.mean, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(inputs.std, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

    def forward(self, images):
        import torch

        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        for module in self.augment:
            x = module(x)
        x = x.clamp_(0.0, 1.0)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)
