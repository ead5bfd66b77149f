"""Every component in the live registry builds and keeps its kind's contract on a tiny model or image.

Parametrised over ``get_registry()`` at collection time, so a newly registered component of any kind is
covered automatically. The contract checks themselves live in the public kit
(``ensemble_core.testing.check_component``, checks in ``ensemble_core.contracts``) that plugin authors run
on their own components; this file adds what holds for the built-ins only (documented schedule shapes, the
exact TTA views, timm names). Components whose factories need parameters get them from
``REQUIRED_PARAMS``; a new component with required parameters must be added there.
"""
from __future__ import annotations

import numpy as np
import pytest

from ensemble_core.contracts import lr_trajectory, one_step, tiny_batch, tiny_model
from ensemble_core.manager import get_registry
from ensemble_core.testing import check_component
from helpers_train import single_torch_thread  # noqa: F401 (autouse fixture)

REGISTRY = get_registry()
REQUIRED_PARAMS = {
    ("task", "factor"): {"factor": "mask"},     # a factor of the default label space (mask_status)
    ("loss", "weighted_sum"): {"terms": [{"name": "cross_entropy", "weight": 0.3},
                                         {"name": "soft_f1", "weight": 0.7}]},
    ("augmentation", "CenterCrop"): {"height": 24, "width": 20},
    ("augmentation", "RandomCrop"): {"height": 24, "width": 20},
    ("augmentation", "RandomResizedCrop"): {"size": [24, 20]},
    ("augmentation", "Resize"): {"height": 16, "width": 12},
    ("augmentation", "LongestMaxSize"): {"max_size": 16},
    ("augmentation", "PadIfNeeded"): {"min_height": 40, "min_width": 40},
    ("device_augmentation", "RandomResizedCrop"): {"size": [16, 12]},   # the check's batch is (4, 3, 16, 12)
    ("optimizer", "sgdp"): {"lr": 0.1},          # timm: lr=required
    ("optimizer", "csgdp"): {"lr": 0.1},
    ("scheduler", "timm_rsqrt"): {"warmup_epochs": 1, "decay_epochs": 1},  # timescale = warm-up length
    # timm's defaults first move the lr after 90+ epochs: schedules that move within the contract's 6
    ("scheduler", "timm_step"): {"decay_epochs": 2},
    ("scheduler", "timm_multistep"): {"decay_milestones": [2, 4]},
    ("scheduler", "timm_wsd"): {"warmup_epochs": 1, "cooldown_epochs": 2},
    ("scheduler", "timm_plateau"): {"warmup_epochs": 1},
}
N_CLASSES = 3


def names(kind):
    return [s.name for s in REGISTRY[kind]]


def params_of(kind, name):
    params = REQUIRED_PARAMS.get((kind, name), {})
    assert REGISTRY.get(kind, name).bind(params) == [], f"{kind} {name!r} needs parameters; add them to REQUIRED_PARAMS"
    return params


def build(kind, name, *engine_args):
    return REGISTRY.build(kind, {"name": name, "params": params_of(kind, name)}, *engine_args)


def check(kind, name, **context):
    """The kit's full contract check of a built-in (what a plugin author runs on theirs)."""
    return check_component(kind, name, params_of(kind, name), **context)


def batch(n=8):
    return tiny_batch(n, N_CLASSES)


@pytest.mark.parametrize("name", names("loss"))
def test_loss_takes_int_and_soft_targets_and_trains_one_step(name):
    """Kit: a finite scalar with a gradient for int (N,) and soft (N, C) targets; one SGD step on a tiny model
    gives a finite loss and moves its weights."""
    check("loss", name, num_classes=N_CLASSES)


def test_ordinal_cross_entropy_charges_a_near_miss_less_than_a_far_one():
    import torch

    loss = REGISTRY.build("loss", {"name": "ordinal_cross_entropy", "params": {"sigma": 1.0}})
    logits = torch.full((1, 6), -4.0)
    logits[0, 2] = 4.0                                             # sure of class 2
    costs = [float(loss(logits, torch.tensor([k]))) for k in range(6)]
    assert costs[2] < costs[3] < costs[4] < costs[5] and costs[1] < costs[0]
    sharp = REGISTRY.build("loss", {"name": "ordinal_cross_entropy", "params": {"sigma": 1e-3}})
    z = torch.randn(5, 6)
    t = torch.tensor([0, 1, 2, 3, 5])
    assert float(sharp(z, t)) == pytest.approx(float(torch.nn.functional.cross_entropy(z, t)), rel=1e-5)
    soft = torch.zeros(5, 6)
    soft[torch.arange(5), t] = 1.0                                 # one-hot soft targets = the class ids
    assert float(loss(z, soft)) == pytest.approx(float(loss(z, t)), rel=1e-6)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        REGISTRY.build("loss", {"name": "ordinal_cross_entropy", "params": {"sigma": 0}})


@pytest.mark.parametrize("name", names("optimizer"))
def test_optimizer_updates_parameters(name):
    """Kit: a torch.optim.Optimizer whose two steps (ADOPT initialises on the first) move a tiny model's weights."""
    check("optimizer", name)


# schedulers whose documented behaviour is to keep the optimizer's learning rate; every other one must move it
CONSTANT_SCHEDULERS = {"constant", "timm_constant"}
from ensemble_core.contracts import SCHEDULE_EPOCHS, SCHEDULE_LR as BASE_LR, SCHEDULE_STEPS  # noqa: E402


@pytest.mark.parametrize("name", names("scheduler"))
def test_scheduler_moves_the_learning_rate_and_resumes_from_its_state(name):
    """A scheduler changes the lr over the run (unless it is documented as constant), and one restored from
    its state_dict mid-run continues with the same learning rates (what a resumed member relies on)."""
    import torch

    from ensemble_core.train.schedule import ScheduledLR
    sched = build("scheduler", name, torch.optim.SGD(tiny_model().parameters(), lr=BASE_LR), SCHEDULE_EPOCHS,
                  SCHEDULE_STEPS)
    assert isinstance(sched, ScheduledLR) and sched.interval in ("epoch", "step")
    # kit: finite learning rates >= 0 over 6 epochs x 4 steps; restored from its state_dict after 2 epochs it
    # continues with the same ones
    lrs = check("scheduler", name)
    assert all(np.isfinite(lr) and lr >= 0 for lr in lrs)
    if name in CONSTANT_SCHEDULERS:
        assert set(lrs) == {BASE_LR}, f"{name} is documented to keep the learning rate"
    else:
        assert len(set(np.round(lrs, 12))) > 1, f"scheduler {name} never changed the learning rate in " \
                                                f"{SCHEDULE_EPOCHS} epochs x {SCHEDULE_STEPS} steps"


def test_builtin_schedulers_follow_their_documented_shape():
    def run(name, **params):
        import torch
        model = tiny_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR)
        spec = REGISTRY.get("scheduler", name)
        sched = spec.build(optimizer, SCHEDULE_EPOCHS, SCHEDULE_STEPS, **params)
        return np.array(lr_trajectory(sched, optimizer, model, SCHEDULE_EPOCHS, SCHEDULE_STEPS))

    per_epoch = run("step", step_size=2, gamma=0.5)[::SCHEDULE_STEPS]
    np.testing.assert_allclose(per_epoch, BASE_LR * np.array([1, 1, 0.5, 0.5, 0.25, 0.25]))
    restarts = run("cosine_warm_restarts", T_0=2, eta_min=0.0)[::SCHEDULE_STEPS]   # cosine over 2 epochs, restart
    np.testing.assert_allclose(restarts, BASE_LR * np.array([1, 0.5, 1, 0.5, 1, 0.5]), atol=1e-12)
    cosine = run("cosine", eta_min=0.0)
    total = SCHEDULE_EPOCHS * SCHEDULE_STEPS
    np.testing.assert_allclose(cosine, BASE_LR * (1 + np.cos(np.pi * np.arange(total) / total)) / 2, atol=1e-12)
    onecycle = run("onecycle")
    peak = int(np.argmax(onecycle))                 # up from lr / 25 to about lr by 30 % of the run, then down
    assert onecycle[0] == pytest.approx(BASE_LR / 25) and onecycle[peak] == pytest.approx(BASE_LR, rel=0.01)
    assert abs(peak - 0.3 * total) <= 2 and onecycle[-1] < BASE_LR / 25
    assert set(run("constant")) == {BASE_LR}


@pytest.mark.parametrize("name", names("augmentation"))
def test_augmentation_applies_to_an_rgb_uint8_image(name):
    """Kit: through albumentations.Compose a (32, 24, 3) uint8 image becomes an (H, W, 3) uint8 one (float32 from
    Normalize)."""
    out = check("augmentation", name, image_size=(32, 24))
    assert out.ndim == 3 and out.shape[2] == 3, f"{name} returned shape {out.shape}"


@pytest.mark.parametrize("name", names("batch_augmentation"))
def test_batch_augmentation_gives_soft_targets_and_trains_one_step(name):
    """Kit: (images, int targets) -> images of the same shape and soft (N, C) targets summing to 1 (after 5 calls:
    stateful ones such as class_cutmix need a batch with the class first), which train a tiny model one step."""
    check("batch_augmentation", name, num_classes=N_CLASSES)
    import torch
    torch.manual_seed(0)
    augment = build("batch_augmentation", name, N_CLASSES)
    images, targets = batch()
    for _ in range(5):
        out_images, soft = augment(images, targets)
    model = tiny_model()
    loss_fn = REGISTRY.build("loss", "cross_entropy")       # the built-in loss takes them too
    assert np.isfinite(one_step(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), out_images, soft))


# what each built-in TTA view must be (on NCHW tensors); a new TTA only has to differ from the identity
EXPECTED_TTA = {"hflip": lambda x: x.flip(-1), "vflip": lambda x: x.flip(-2)}


@pytest.mark.parametrize("name", names("tta"))
def test_tta_gives_another_view_of_the_batch(name):
    """Kit: each view (a multi-view TTA exposes ``views``) keeps the batch's shape, leaves its input alone and
    differs from the identity."""
    import torch
    check("tta", name)
    tta = build("tta", name)
    images, _ = batch()
    if name in EXPECTED_TTA:
        assert torch.equal(tta(images), EXPECTED_TTA[name](images)), f"{name} is not {name}"


def test_class_cutmix_pastes_the_target_class():
    import torch
    torch.manual_seed(0)
    augment = REGISTRY.build("batch_augmentation", "class_cutmix", N_CLASSES, target_class=2, prob=1.0)
    images, targets = batch()
    _, soft = augment(images, targets)
    not_target = targets != 2
    assert bool((soft[not_target, 2] > 0).any()), "no sample received a piece of class 2"


TINY_BACKBONES = [n for n in ("test_efficientnet", "test_resnet", "resnet10t") if n in REGISTRY["backbone"]]


@pytest.mark.parametrize("name", TINY_BACKBONES)
def test_tiny_backbone_maps_images_to_logits(name):
    """Kit: an nn.Module mapping (2, 3, 32, 32) to finite logits (2, num_classes)."""
    check("backbone", name, num_classes=N_CLASSES, image_size=(32, 32))


@pytest.mark.parametrize("name", names("backbone"))
def test_every_registered_backbone_is_a_timm_model(name):
    import timm
    spec = REGISTRY.get("backbone", name)
    model_name = getattr(spec.load(), "model_name", name)
    assert timm.is_model(model_name), f"backbone {name!r} -> {model_name!r} is not a timm model"


def test_any_timm_name_resolves_and_misspellings_suggest():
    from ensemble_core.errors import UnknownComponentError
    assert REGISTRY.get("backbone", "tf_efficientnet_b3.ns_jft_in1k").name == "tf_efficientnet_b3.ns_jft_in1k"
    assert REGISTRY.get("backbone", "convnextv2_nano").name == "convnextv2_nano"
    with pytest.raises(UnknownComponentError, match="tf_efficientnet_b3_ns"):
        REGISTRY.get("backbone", "tf_efficientnet_b3_nss")


def test_seed_loss_is_expressible_as_data():
    from ensemble_core.recipe import validate
    recipe = {"tasks": [{"task": "gender", "backbone": "tf_efficientnet_b3_ns",
                         "loss": {"name": "weighted_sum", "params": {"terms": [
                             {"name": "cross_entropy", "weight": 0.3}, {"name": "soft_f1", "weight": 0.7}]}},
                         "optimizer": {"name": "adam", "params": {"lr": 1e-5, "weight_decay": 1e-5}},
                         "scheduler": {"name": "cosine_warm_restarts", "params": {"eta_min": 1e-7}},
                         "augmentations": ["RandomBrightnessContrast", "HueSaturationValue", "CLAHE",
                                           {"name": "CenterCrop", "params": {"height": 380, "width": 350}}]}]}
    validate(recipe)
    bad = {"tasks": [{**recipe["tasks"][0], "loss": {"name": "weighted_sum", "params": {"terms": [
        {"name": "soft_f2", "weight": 0.7}]}}}]}
    from ensemble_core.errors import RecipeError
    with pytest.raises(RecipeError, match="soft_f1"):
        validate(bad)


# ---------------------------------------------------------------- voters and decisions (numpy only)
@pytest.mark.parametrize("name", names("voter"))
def test_voter_fits_on_nan_padded_oof_and_votes_rows_that_sum_to_one(name):
    """Kit: on (4, 400, 5) probabilities NaN outside each member's fold (2 groups x 2 folds, a person per image,
    passed when fit takes groups / persons) fit returns the voter, the vote is (400, 5) with rows summing to 1,
    a NaN-free eval vote is finite, and crossfit_oof (learned voters' honest OOF) has the vote's shape."""
    check("voter", name)


@pytest.mark.parametrize("name", names("decision"))
def test_decision_fits_on_oof_scores_18_classes_and_round_trips_its_parameters(name):
    """Kit: keeps force / match_confidence / cv_folds, fit returns itself, (300, 18) finite scores, fitted() is
    JSON that load() restores to the same decisions."""
    check("decision", name)


# ---------------------------------------------------------------- kinds only the kit checked before
OTHER_KINDS = ("label_transform", "task", "splitter", "executor", "device_augmentation")


@pytest.mark.parametrize("kind, name", [(k, n) for k in OTHER_KINDS for n in names(k)])
def test_every_other_builtin_component_keeps_its_contract(kind, name):
    if (kind, name) == ("executor", "ray"):
        pytest.importorskip("ray")
    check(kind, name)
