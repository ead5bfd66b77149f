"""Built-in per-sample augmentations (albumentations 2.0.x).

Each factory is the albumentations class itself (lazy ``"albumentations:Name"``),
so recipe parameters are checked against albumentations' real signature and
``python -m ensemble_core show augmentations CenterCrop`` lists them. Any other
albumentations transform resolves by its class name through
:func:`ensemble_resolve_component`.

Example (the seed's gender model)::

    augmentations: [RandomBrightnessContrast, HueSaturationValue, CLAHE,
                    {name: CenterCrop, params: {height: 380, width: 350}}]
"""
from __future__ import annotations

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

CURATED: dict[str, str] = {
    "HueSaturationValue": "random hue, saturation and value shifts (seed)",
    "RandomBrightnessContrast": "random brightness and contrast (seed)",
    "CLAHE": "contrast-limited adaptive histogram equalisation (seed)",
    "ColorJitter": "random brightness, contrast, saturation and hue",
    "ToGray": "convert to grayscale (3 channels kept)",
    "CenterCrop": "crop height x width around the centre (seed: 380 x 350)",
    "RandomCrop": "crop height x width at a random place",
    "RandomResizedCrop": "random area/aspect crop resized to size=(height, width)",
    "Resize": "resize to height x width",
    "LongestMaxSize": "resize so the longest side is max_size",
    "PadIfNeeded": "pad to at least min_height x min_width",
    "HorizontalFlip": "mirror left-right",
    "VerticalFlip": "mirror top-bottom",
    "Rotate": "rotate by a random angle within limit",
    "Affine": "random scale / translate / rotate / shear",
    "GaussNoise": "additive Gaussian noise",
    "Blur": "box blur",
    "CoarseDropout": "cut out random rectangles",
    "ImageCompression": "JPEG / WebP compression artefacts",
    "Normalize": "subtract mean, divide by std (the engine normalises already; use for custom stats)",
}


def shift_scale_rotate(shift_limit: float = 0.0625, scale_limit: float = 0.1, rotate_limit: float = 45,
                       border_mode: int = 0, p: float = 0.5):
    """The classic ShiftScaleRotate expressed as albumentations' Affine (its deprecated alias warns)."""
    import albumentations as A
    return A.Affine(translate_percent=(-shift_limit, shift_limit), scale=(1 - scale_limit, 1 + scale_limit),
                    rotate=(-rotate_limit, rotate_limit), border_mode=border_mode, p=p)


@hookimpl
def ensemble_register_augmentations():
    specs = [ComponentSpec(name, "augmentation", f"albumentations:{name}", description=desc)
             for name, desc in CURATED.items()]
    specs.append(ComponentSpec("ShiftScaleRotate", "augmentation", f"{__name__}:shift_scale_rotate",
                               description="random shift (fraction), scale and rotation (degrees), via Affine"))
    return specs


@hookimpl
def ensemble_resolve_component(kind, name):
    """Any albumentations transform class name is an augmentation."""
    if kind != "augmentation" or not name[:1].isupper():
        return None
    import albumentations as A

    cls = getattr(A, name, None)
    if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform):
        return None
    return ComponentSpec(name, "augmentation", f"albumentations:{name}",
                         description=f"albumentations.{name}", origin=__name__)
