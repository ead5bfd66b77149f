"""Built-in device forms of augmentations (``augment_on: device``), on kornia.augmentation.

A batch reaches the training device as uint8, is scaled to 0..1 and goes through these, every sample
with its own random parameters (kornia draws per-sample parameters from torch's RNG, so a seeded
member replays the same draws and a checkpoint restores them). Each factory takes the recipe
parameters of the albumentations transform it stands in for, so a recipe switches between
``augment_on: workers`` and ``device`` without other edits:

| augmentation | device form | how the parameters map |
|---|---|---|
| HorizontalFlip / VerticalFlip | RandomHorizontalFlip / RandomVerticalFlip | same ``p`` |
| ShiftScaleRotate | RandomAffine | translate = shift_limit, scale = 1 +- scale_limit, degrees = rotate_limit |
| Affine | RandomAffine | scale, translate_percent, rotate, shear as ranges (the dict forms are refused) |
| RandomResizedCrop | RandomResizedCrop | size, scale, ratio, p |
| RandomBrightnessContrast | RandomBrightness + RandomContrast under one ``p`` | additive brightness +- limit, multiplicative contrast 1 +- limit (albumentations' ``img * alpha + beta``) |
| HueSaturationValue | RandomHue + RandomSaturation + RandomBrightness under one ``p`` | hue limit in OpenCV units (180 = a full turn), saturation and value limits in 0..255 units |
| CoarseDropout | RandomErasing, once per hole | hole sizes as fractions of the image; ``fill`` a number |

Anything else (CLAHE, ImageCompression, ...) has no device form and keeps running on the loader
workers before the batch is sent; ``python -m ensemble_core validate`` lists which is which.
"""
from __future__ import annotations

from typing import Any, Sequence

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


def _range(value: Any, centre: float = 0.0, name: str = "limit") -> tuple[float, float]:
    """albumentations' ``x`` or ``(lo, hi)`` -> ``(centre - x, centre + x)`` or ``(centre + lo, centre + hi)``."""
    if isinstance(value, (int, float)):
        return centre - abs(float(value)), centre + abs(float(value))
    if isinstance(value, Sequence) and len(value) == 2:
        return centre + float(value[0]), centre + float(value[1])
    raise ValueError(f"{name} must be a number or [low, high], got {value!r}")


def _gated(p: float, *modules):
    """Apply ``modules`` in order to a random subset of the batch: each sample with probability ``p``."""
    import torch

    class Gated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = float(p)
            self.inner = torch.nn.Sequential(*modules)

        def forward(self, images):
            chosen = torch.rand(len(images), device=images.device) < self.p
            if not bool(chosen.any()):
                return images
            out = images.clone()
            out[chosen] = self.inner(images[chosen])
            return out

        def extra_repr(self) -> str:
            return f"p={self.p}"

    return Gated()


def horizontal_flip(p: float = 0.5):
    import kornia.augmentation as K
    return K.RandomHorizontalFlip(p=p)


def vertical_flip(p: float = 0.5):
    import kornia.augmentation as K
    return K.RandomVerticalFlip(p=p)


def shift_scale_rotate(shift_limit: float = 0.0625, scale_limit: float = 0.1, rotate_limit: float = 45,
                       border_mode: int = 0, p: float = 0.5):
    import kornia.augmentation as K
    if border_mode != 0:
        raise ValueError("the device form pads with zeros (border_mode 0); use augment_on: workers for other borders")
    return K.RandomAffine(degrees=float(rotate_limit), translate=(float(shift_limit), float(shift_limit)),
                          scale=(1 - float(scale_limit), 1 + float(scale_limit)), padding_mode="zeros", p=p)


def affine(scale: Any = (1.0, 1.0), translate_percent: Any = None, rotate: Any = 0.0, shear: Any = (0.0, 0.0),
           border_mode: int = 0, p: float = 0.5):
    import kornia.augmentation as K
    for name, value in (("scale", scale), ("translate_percent", translate_percent), ("shear", shear)):
        if isinstance(value, dict):
            raise ValueError(f"Affine {name} as a per-axis dict has no device form; use augment_on: workers")
    if border_mode != 0:
        raise ValueError("the device form pads with zeros (border_mode 0); use augment_on: workers for other borders")
    scale_range = (float(scale), float(scale)) if isinstance(scale, (int, float)) else tuple(map(float, scale))
    translate = None
    if translate_percent is not None:
        lo, hi = _range(translate_percent, name="translate_percent")
        translate = (max(abs(lo), abs(hi)),) * 2
    degrees = _range(rotate, name="rotate")
    shear_range = _range(shear, name="shear") if shear is not None else None
    return K.RandomAffine(degrees=degrees, translate=translate, scale=scale_range,
                          shear=shear_range if shear_range != (0.0, 0.0) else None, padding_mode="zeros", p=p)


def random_resized_crop(size: Sequence[int], scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (0.75, 4 / 3), interpolation: int = 1, p: float = 1.0):
    import kornia.augmentation as K
    return K.RandomResizedCrop(size=(int(size[0]), int(size[1])), scale=tuple(scale), ratio=tuple(ratio), p=p)


def random_brightness_contrast(brightness_limit: Any = (-0.2, 0.2), contrast_limit: Any = (-0.2, 0.2),
                               brightness_by_max: bool = True, ensure_safe_range: bool = False, p: float = 0.5):
    import kornia.augmentation as K
    if not brightness_by_max:
        raise ValueError("brightness_by_max=false has no device form; use augment_on: workers")
    # kornia's RandomBrightness adds (factor - 1); RandomContrast multiplies by factor
    return _gated(p, K.RandomContrast(contrast=_range(contrast_limit, 1.0, "contrast_limit"), p=1.0),
                  K.RandomBrightness(brightness=_range(brightness_limit, 1.0, "brightness_limit"), p=1.0))


def hue_saturation_value(hue_shift_limit: Any = (-20, 20), sat_shift_limit: Any = (-30, 30),
                         val_shift_limit: Any = (-20, 20), p: float = 0.5):
    import kornia.augmentation as K
    hue = tuple(v / 180.0 for v in _range(hue_shift_limit, name="hue_shift_limit"))   # OpenCV: 180 = a full turn
    lo, hi = _range(sat_shift_limit, name="sat_shift_limit")
    # albumentations adds to saturation in 0..255; kornia scales it: the same shift on a mid saturation (0.5)
    saturation = (max(0.0, 1 + 2 * lo / 255.0), 1 + 2 * hi / 255.0)
    value = tuple(1 + v / 255.0 for v in _range(val_shift_limit, name="val_shift_limit"))
    return _gated(p, K.RandomHue(hue=hue, p=1.0), K.RandomSaturation(saturation=saturation, p=1.0),
                  K.RandomBrightness(brightness=value, p=1.0))


def coarse_dropout(num_holes_range: Sequence[int] = (1, 2), hole_height_range: Sequence[float] = (0.1, 0.2),
                   hole_width_range: Sequence[float] = (0.1, 0.2), fill: Any = 0, fill_mask: Any = None,
                   p: float = 0.5):
    import kornia.augmentation as K
    if not isinstance(fill, (int, float)):
        raise ValueError(f"CoarseDropout fill={fill!r} has no device form (a number only); use augment_on: workers")
    ranges = list(hole_height_range) + list(hole_width_range)
    if any(isinstance(v, int) and not isinstance(v, bool) and v > 1 for v in ranges):
        raise ValueError("CoarseDropout hole sizes in pixels have no device form; give fractions of the image")
    (h0, h1), (w0, w1) = hole_height_range, hole_width_range
    holes = int(num_holes_range[1])
    erase = [K.RandomErasing(scale=(h0 * w0, h1 * w1), ratio=(h0 / w1, h1 / w0), value=float(fill) / 255.0
                             if fill > 1 else float(fill), p=1.0 if i < int(num_holes_range[0]) else 0.5)
             for i in range(holes)]
    return _gated(p, *erase)


DEVICE_FORMS = {
    "HorizontalFlip": (horizontal_flip, "kornia RandomHorizontalFlip"),
    "VerticalFlip": (vertical_flip, "kornia RandomVerticalFlip"),
    "ShiftScaleRotate": (shift_scale_rotate, "kornia RandomAffine (shift, scale, rotation)"),
    "Affine": (affine, "kornia RandomAffine (scale, translate, rotate, shear ranges)"),
    "RandomResizedCrop": (random_resized_crop, "kornia RandomResizedCrop"),
    "RandomBrightnessContrast": (random_brightness_contrast, "kornia RandomBrightness + RandomContrast"),
    "HueSaturationValue": (hue_saturation_value, "kornia RandomHue + RandomSaturation + RandomBrightness"),
    "CoarseDropout": (coarse_dropout, "kornia RandomErasing, one per hole"),
}


@hookimpl
def ensemble_register_device_augmentations():
    return [ComponentSpec(name, "device_augmentation", f"{__name__}:{factory.__name__}", description=desc)
            for name, (factory, desc) in DEVICE_FORMS.items()]
