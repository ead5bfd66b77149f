"""Augmentation on the training device (augment_on: device), multi-view TTA and eval_image_size (issue 13)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_core.data.device_augment import DeviceAugment, build_device_augment, split_augmentations
from ensemble_core.manager import get_registry
from ensemble_core.recipe import Recipe, device_notes, validate
from helpers_train import load_demo, person_split, tiny_member

N = 256


def face_batch(n: int = N, h: int = 32, w: int = 24) -> np.ndarray:
    """``n`` copies of one structured test image (gradients + a bright square), uint8 HWC."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (h + w - 2)], -1).astype(np.uint8)
    img[h // 4:h // 2, w // 4:w // 2] = (220, 200, 180)
    return np.repeat(img[None], n, axis=0)


def on_workers(name: str, params: dict, images: np.ndarray) -> np.ndarray:
    """albumentations, one image at a time (as the loader workers do), float 0..1 NHWC."""
    aug = get_registry().build("augmentation", name, **params)
    np.random.seed(0)
    import random
    random.seed(0)
    if hasattr(aug, "set_random_seed"):
        aug.set_random_seed(0)
    return np.stack([aug(image=img)["image"] for img in images]).astype(np.float32) / 255.0


def on_device(name: str, params: dict, images: np.ndarray) -> np.ndarray:
    module = get_registry().build("device_augmentation", name, **params)
    torch.manual_seed(0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    out = module(x).clamp(0, 1)
    assert out.shape == x.shape and out.dtype == torch.float32
    return out.permute(0, 2, 3, 1).numpy()


def changed(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-sample mean absolute change from the input."""
    return np.abs(out - ref).mean(axis=(1, 2, 3))


# name, params, statistic(out, input) -> per-sample value compared between the two forms
CASES = [
    ("HorizontalFlip", {"p": 0.5}, lambda o, x: (changed(o, x) > 1e-6).astype(float)),
    ("VerticalFlip", {"p": 0.5}, lambda o, x: (changed(o, x) > 1e-6).astype(float)),
    ("ShiftScaleRotate", {"shift_limit": 0.06, "scale_limit": 0.1, "rotate_limit": 10, "p": 1.0}, changed),
    ("Affine", {"scale": (0.9, 1.1), "translate_percent": 0.05, "rotate": (-10, 10), "p": 1.0}, changed),
    ("RandomBrightnessContrast", {"p": 1.0}, lambda o, x: o.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))),
    ("HueSaturationValue", {"p": 1.0}, changed),
    ("CoarseDropout", {"p": 1.0, "hole_height_range": (0.2, 0.3), "hole_width_range": (0.2, 0.3)},
     lambda o, x: (np.abs(o).sum(axis=-1) == 0).mean(axis=(1, 2))),
]


@pytest.mark.parametrize("name,params,stat", CASES, ids=[c[0] for c in CASES])
def test_device_form_matches_albumentations_statistics(name, params, stat):
    images = face_batch()
    x = images.astype(np.float32) / 255.0
    a = stat(on_workers(name, params, images), x)
    d = stat(on_device(name, params, images), x)
    # the same distribution of the effect: means within 35% (or 0.02 absolute) and spreads of the same order
    assert abs(a.mean() - d.mean()) <= max(0.35 * abs(a.mean()), 0.02), (name, a.mean(), d.mean())
    assert 0.4 <= (d.std() + 1e-3) / (a.std() + 1e-3) <= 2.5, (name, a.std(), d.std())


def test_random_resized_crop_device_form():
    images = face_batch()
    params = {"size": (32, 24), "scale": (0.3, 1.0)}
    a, d = on_workers("RandomResizedCrop", params, images), on_device("RandomResizedCrop", params, images)
    assert a.shape == d.shape
    x = images.astype(np.float32) / 255.0
    assert abs(changed(a, x).mean() - changed(d, x).mean()) <= 0.35 * changed(a, x).mean()


@pytest.mark.parametrize("name,params", [(c[0], c[1]) for c in CASES] +
                         [("RandomResizedCrop", {"size": (32, 24), "scale": (0.3, 1.0)})])
def test_every_sample_draws_its_own_parameters(name, params):
    params = {**params, "p": 1.0}
    out = on_device(name, params, face_batch(16))
    if name in ("HorizontalFlip", "VerticalFlip"):   # with p=1 every sample flips the same way
        out = on_device(name, {"p": 0.5}, face_batch(64))
    distinct = {np.round(o, 4).tobytes() for o in out}
    assert len(distinct) > 1


def test_device_augment_takes_uint8_and_leaves_labels_alone():
    registry = get_registry()
    workers, device = split_augmentations(["CLAHE", "HorizontalFlip", {"name": "RandomBrightnessContrast",
                                                                       "params": {"p": 1.0}}], registry)
    assert [r["name"] for r in workers] == ["CLAHE"]
    assert [r["name"] for r in device] == ["HorizontalFlip", "RandomBrightnessContrast"]
    aug = build_device_augment(device, registry)
    assert isinstance(aug, DeviceAugment)
    batch = torch.from_numpy(face_batch(8)).permute(0, 3, 1, 2).contiguous()
    targets = torch.arange(8)
    out = aug(batch)
    assert out.dtype == torch.float32 and out.shape == batch.shape
    assert out.mean().abs() < 3 and torch.equal(targets, torch.arange(8))   # normalised; targets untouched
    identity = DeviceAugment([])(batch)
    from ensemble_core.data.images import build_transforms
    ref = build_transforms([], [], (32, 24), registry, train=False)(image=face_batch(1)[0])["image"]
    torch.testing.assert_close(identity[0], ref, atol=1e-5, rtol=1e-5)     # same normalisation as the workers


def test_validate_checks_device_params_and_says_where_each_runs():
    recipe = {"name": "d", "defaults": {"augment_on": "device", "augmentations": [
        "CLAHE", {"name": "HorizontalFlip", "params": {"p": 0.3}}]},
        "tasks": [{"task": "mask", "backbone": "test_resnet"}]}
    r = validate(Recipe.from_dict(recipe))
    [note] = device_notes(r, get_registry())
    assert "HorizontalFlip on the device" in note and "CLAHE on the loader workers (no device form)" in note
    recipe["defaults"]["augment_on"] = "gpu"
    from ensemble_core.errors import RecipeError
    with pytest.raises(RecipeError, match="augment_on: must be workers"):
        validate(Recipe.from_dict(recipe))


def test_a_member_trains_with_device_augmentation_and_records_it(demo_dir, tmp_path):
    from ensemble_core.train import train_member

    ds = load_demo(demo_dir)
    member = tiny_member("mask", augment_on="device", augmentations=["HorizontalFlip", "RandomBrightnessContrast"])
    plain = tiny_member("mask")
    assert member.config_hash() != plain.config_hash()
    assert tiny_member("mask", augment_on="workers").config_hash() == plain.config_hash()   # default: same name
    summary = train_member(member, ds, person_split(ds.train), tmp_path / member.run_name, quiet=True, registry=get_registry())
    assert summary["status"] == "trained" and summary["epochs_run"] == 1
    assert (tmp_path / member.run_name / "oof.npz").is_file()


def test_device_loader_sends_uint8_and_eval_uses_eval_image_size(demo_dir):
    from ensemble_core.train import components as C
    from ensemble_core.train.inputs import MemberLoaders, select_samples

    ds = load_demo(demo_dir)
    member = tiny_member("mask", augment_on="device", augmentations=["HorizontalFlip"], eval_image_size=[40, 32])
    registry = get_registry()
    task = C.build_task(member, registry)
    loaders = MemberLoaders(select_samples(task, ds, person_split(ds.train)), member, registry, None, seed=1)
    images, _ = next(iter(loaders.train_loader(np.arange(len(loaders.train_set)))))
    assert images.dtype == torch.uint8 and tuple(images.shape[-2:]) == (32, 24)
    val, _ = next(iter(loaders.val_loader()))
    assert val.dtype == torch.float32 and tuple(val.shape[-2:]) == (40, 32)


# ---------------------------------------------------------------- test-time views
def test_shifts_tta_gives_nine_distinct_views():
    from ensemble_core.train.components import build_ttas

    member = tiny_member("mask", tta=[{"name": "shifts", "params": {"pixels": 2}}])
    views = build_ttas(member, get_registry())
    assert len(views) == 9
    x = torch.randn(2, 3, 16, 12)
    outs = [v(x) for v in views]
    assert all(o.shape == x.shape for o in outs)
    assert len({o.numpy().round(5).tobytes() for o in outs + [x]}) == 10
    up = [v for v in views if repr(v) == "shift(-2,0)"][0](x)
    torch.testing.assert_close(up[..., :-2, :], x[..., 2:, :])           # content moved up by 2
    assert len(build_ttas(tiny_member("mask", tta=[{"name": "shifts", "params": {"flips": False}}]),
                          get_registry())) == 4


def test_member_prediction_averages_every_view(demo_dir, tmp_path):
    from ensemble_core.train import train_member

    ds = load_demo(demo_dir)
    member = tiny_member("gender", tta=["shifts"])
    summary = train_member(member, ds, person_split(ds.train), tmp_path / member.run_name, quiet=True, registry=get_registry())
    assert len(summary["tta"]) == 9
    with np.load(tmp_path / member.run_name / "oof.npz", allow_pickle=False) as oof:
        np.testing.assert_allclose(oof["probs"].sum(axis=1), 1.0, atol=1e-5)
