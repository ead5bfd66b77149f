"""Built-in test-time augmentations on normalised ``(N, C, H, W)`` tensors.

The member's prediction is the mean of the softmax over the identity view and each TTA view. A TTA
with several views exposes them as ``views`` (``shifts``: small translations, optionally mirrored);
each counts as one view in the mean. Evaluating at a larger size than training (the train-low /
test-high effect) is the member field ``eval_image_size``, not a TTA.
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


class Shift:
    """Translate by ``(dy, dx)`` pixels, repeating the edge rows / columns into the gap (then mirror when
    ``mirror``)."""

    def __init__(self, dy: int, dx: int, mirror: bool = False):
        self.dy, self.dx, self.mirror = int(dy), int(dx), bool(mirror)

    def __call__(self, images):
        import torch.nn.functional as F

        h, w = images.shape[-2:]
        dy, dx = self.dy, self.dx
        pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))   # left, right, top, bottom
        out = F.pad(images, pad, mode="replicate")[..., max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w]
        return out.flip(-1) if self.mirror else out

    def __repr__(self) -> str:
        return f"shift({self.dy},{self.dx}{',hflip' if self.mirror else ''})"


class Views:
    """Several test-time views from one TTA entry."""

    def __init__(self, views, name: str):
        self.views, self.name = list(views), name

    def __repr__(self) -> str:
        return f"{self.name}[{', '.join(map(repr, self.views))}]"


def shifts(pixels: int = 2, flips: bool = True) -> Views:
    """The four one-axis shifts by ``pixels`` (up, down, left, right) and, with ``flips``, the mirrored
    image and its four shifts: 4 or 9 views besides the identity."""
    if int(pixels) < 1:
        raise ValueError(f"shifts: pixels must be >= 1, got {pixels!r}")
    p = int(pixels)
    offsets = [(-p, 0), (p, 0), (0, -p), (0, p)]
    views = [Shift(dy, dx) for dy, dx in offsets]
    if flips:
        views += [Flip(-1, "hflip")] + [Shift(dy, dx, mirror=True) for dy, dx in offsets]
    return Views(views, f"shifts({p}{', flips' if flips else ''})")


def hflip() -> Flip:
    return Flip(-1, "hflip")


def vflip() -> Flip:
    return Flip(-2, "vflip")


@hookimpl
def ensemble_register_ttas():
    return [
        ComponentSpec("hflip", "tta", f"{__name__}:hflip", description="mirror left-right"),
        ComponentSpec("vflip", "tta", f"{__name__}:vflip", description="mirror top-bottom (faces: rarely useful)"),
        ComponentSpec("shifts", "tta", f"{__name__}:shifts",
                      description="small shifts (pixels) up/down/left/right, and mirrored (flips): 4 or 9 views"),
    ]
