"""Augmentation: ``factory(**params) -> albumentations transform`` applied to one HWC uint8 RGB image at a time
(inside ``albumentations.Compose``; it must keep 3 channels and uint8, or give float32 as ``Normalize`` does).
A transform of your own subclasses ``ImageOnlyTransform`` (or ``DualTransform`` when it moves pixels)."""
from __future__ import annotations

import albumentations as A
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)   # ITU-R BT.601


class RandomGrey(A.ImageOnlyTransform):
    """With probability ``p``, the photo in grey (luma), kept as 3 channels: colour stops being a cue."""

    def __init__(self, p: float = 0.5):
        super().__init__(p=p)

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        grey = img[..., :3].astype(np.float32) @ LUMA
        if img.dtype == np.uint8:
            grey = np.clip(np.rint(grey), 0, 255)
        return np.repeat(grey[..., None], 3, axis=2).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()
