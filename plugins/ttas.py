"""Built-in test-time augmentations on normalised ``(N, C, H, W)`` tensors.

The member's prediction is the mean of the softmax over the identity view and each TTA view.
"""
from __future__ import annotations

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


class Flip:
    def __init__(self, dim: int, name: str):
        self.dim, self.name = dim, name

    def __call__(self, images):
        return images.flip(self.dim)

    def __repr__(self) -> str:
        return self.name


def hflip() -> Flip:
    return Flip(-1, "hflip")


def vflip() -> Flip:
    return Flip(-2, "vflip")


@hookimpl
def ensemble_register_ttas():
    return [
        ComponentSpec("hflip", "tta", f"{__name__}:hflip", description="mirror left-right"),
        ComponentSpec("vflip", "tta", f"{__name__}:vflip", description="mirror top-bottom (faces: rarely useful)"),
    ]
