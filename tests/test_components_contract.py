"""Every training component in the live registry builds and works on a tiny model or image.

Parametrised over ``get_registry()`` at collection time, so a newly registered
loss / optimizer / scheduler / augmentation / batch augmentation / TTA is
covered automatically. Components whose factories need parameters get them from
``REQUIRED_PARAMS``; a new component with required parameters must be added there.
"""
from __future__ import annotations

import numpy as np
import pytest

from ensemble_core.manager import get_registry
from helpers_train import single_torch_thread  # noqa: F401 (autouse fixture)

REGISTRY = get_registry()
REQUIRED_PARAMS = {
    ("loss", "weighted_sum"): {"terms": [{"name": "cross_entropy", "weight": 0.3},
                                         {"name": "soft_f1", "weight": 0.7}]},
    ("augmentation", "CenterCrop"): {"height": 24, "width": 20},
    ("augmentation", "RandomCrop"): {"height": 24, "width": 20},
    ("augmentation", "RandomResizedCrop"): {"size": [24, 20]},
    ("augmentation", "Resize"): {"height": 16, "width": 12},
    ("augmentation", "LongestMaxSize"): {"max_size": 16},
    ("augmentation", "PadIfNeeded"): {"min_height": 40, "min_width": 40},
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


def build(kind, name, *engine_args):
    spec = REGISTRY.get(kind, name)
    params = REQUIRED_PARAMS.get((kind, name), {})
    assert spec.bind(params) == [], f"{kind} {name!r} needs parameters; add them to REQUIRED_PARAMS"
    return REGISTRY.build(kind, {"name": name, "params": params}, *engine_args)   # injects registry (weighted_sum)


def tiny_model():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, N_CLASSES))


def batch(n=8):
    import torch
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 16, 12, generator=g), torch.arange(n) % N_CLASSES


def one_step(model, loss_fn, optimizer, images, targets):
    loss = loss_fn(model(images), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@pytest.mark.parametrize("name", names("loss"))
def test_loss_takes_int_and_soft_targets_and_trains_one_step(name):
    import torch
    loss_fn = build("loss", name)
    images, targets = batch()
    model = tiny_model()
    soft = torch.nn.functional.one_hot(targets, N_CLASSES).float() * 0.8 + 0.2 / N_CLASSES
    assert np.isfinite(float(loss_fn(model(images), soft).detach()))
    before = [p.detach().clone() for p in model.parameters()]
    value = one_step(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), images, targets)
    assert np.isfinite(value)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), f"loss {name} gave no gradient"


@pytest.mark.parametrize("name", names("optimizer"))
def test_optimizer_updates_parameters(name):
    import torch
    model = tiny_model()
    optimizer = build("optimizer", name, model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    images, targets = batch()
    for _ in range(2):  # ADOPT only initialises its second moment on the first step
        one_step(model, torch.nn.CrossEntropyLoss(), optimizer, images, targets)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# schedulers whose documented behaviour is to keep the optimizer's learning rate; every other one must move it
CONSTANT_SCHEDULERS = {"constant", "timm_constant"}
SCHEDULE_EPOCHS, SCHEDULE_STEPS, BASE_LR = 6, 4, 0.1


def lr_trajectory(sched, optimizer, model, epochs: int, steps: int, start: tuple[int, int] = (0, 0)) -> list[float]:
    """The lr of every training step from ``start`` (epoch, step) to the end, stepping as the trainer does."""
    import torch
    images, targets = batch()
    lrs = []
    for epoch in range(start[0], epochs):
        for _ in range(start[1] if epoch == start[0] else 0, steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            one_step(model, torch.nn.CrossEntropyLoss(), optimizer, images, targets)
            if sched.interval == "step":
                sched.scheduler.step()
        if sched.interval == "epoch":
            sched.scheduler.step()
    return lrs


def fresh_schedule(name):
    import torch
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR)
    return model, optimizer, build("scheduler", name, optimizer, SCHEDULE_EPOCHS, SCHEDULE_STEPS)


@pytest.mark.parametrize("name", names("scheduler"))
def test_scheduler_moves_the_learning_rate_and_resumes_from_its_state(name):
    """A scheduler changes the lr over the run (unless it is documented as constant), and one restored from
    its state_dict mid-run continues with the same learning rates (what a resumed member relies on)."""
    from ensemble_core.train.schedule import ScheduledLR
    model, optimizer, sched = fresh_schedule(name)
    assert isinstance(sched, ScheduledLR) and sched.interval in ("epoch", "step")
    lrs = lr_trajectory(sched, optimizer, model, SCHEDULE_EPOCHS, SCHEDULE_STEPS)
    assert all(np.isfinite(lr) and lr >= 0 for lr in lrs)
    if name in CONSTANT_SCHEDULERS:
        assert set(lrs) == {BASE_LR}, f"{name} is documented to keep the learning rate"
    else:
        assert len(set(np.round(lrs, 12))) > 1, f"scheduler {name} never changed the learning rate in " \
                                                f"{SCHEDULE_EPOCHS} epochs x {SCHEDULE_STEPS} steps"
    # stop after 2 epochs; a new model / optimizer / scheduler loads the saved states and continues identically
    model, optimizer, sched = fresh_schedule(name)
    lr_trajectory(sched, optimizer, model, 2, SCHEDULE_STEPS)
    model2, optimizer2, sched2 = fresh_schedule(name)
    optimizer2.load_state_dict(optimizer.state_dict())
    sched2.scheduler.load_state_dict(sched.scheduler.state_dict())
    tail = lr_trajectory(sched2, optimizer2, model2, SCHEDULE_EPOCHS, SCHEDULE_STEPS, start=(2, 0))
    assert tail == pytest.approx(lrs[2 * SCHEDULE_STEPS:], rel=1e-12)


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
    transform = build("augmentation", name)
    image = np.random.default_rng(0).integers(0, 256, (32, 24, 3), dtype=np.uint8)
    out = transform(image=image)["image"]
    assert out.ndim == 3 and out.shape[2] == 3, f"{name} returned shape {out.shape}"


@pytest.mark.parametrize("name", names("batch_augmentation"))
def test_batch_augmentation_gives_soft_targets_and_trains_one_step(name):
    import torch
    torch.manual_seed(0)
    augment = build("batch_augmentation", name, N_CLASSES)
    images, targets = batch()
    for _ in range(5):  # stateful ones (class_cutmix) need a batch with the class first
        out_images, soft = augment(images, targets)
    assert out_images.shape == images.shape
    assert soft.shape == (len(images), N_CLASSES)
    assert torch.allclose(soft.sum(1), torch.ones(len(images)), atol=1e-5)
    model = tiny_model()
    loss_fn = REGISTRY.build("loss", "cross_entropy")
    assert np.isfinite(one_step(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), out_images, soft))


# what each built-in TTA view must be (on NCHW tensors); a new TTA only has to differ from the identity
EXPECTED_TTA = {"hflip": lambda x: x.flip(-1), "vflip": lambda x: x.flip(-2)}


@pytest.mark.parametrize("name", names("tta"))
def test_tta_gives_another_view_of_the_batch(name):
    import torch
    tta = build("tta", name)
    images, _ = batch()
    views = getattr(tta, "views", None) or [tta]          # a multi-view TTA exposes its views
    assert views and all(callable(v) for v in views)
    for view in views:
        kept = images.clone()
        out = view(images)
        assert out.shape == images.shape and torch.equal(images, kept), f"{name} changed its input in place"
        assert not torch.equal(out, images), f"tta {name} returned the batch unchanged: it adds no view"
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
    import torch
    model = build("backbone", name, N_CLASSES)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, N_CLASSES)


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
def oof_like(n_members=4, n=400, n_classes=5, seed=0):
    """(M, N, C) probabilities, NaN outside each member's fold; 2 groups x 2 folds; person per image."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    persons = np.arange(n) // 4
    fold = persons % 2
    probs = np.full((n_members, n, n_classes), np.nan)
    for m in range(n_members):
        z = rng.normal(size=(n, n_classes))
        z[np.arange(n), y] += 1.5
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        probs[m, fold == m % 2] = p[fold == m % 2]
    return probs, y, [f"g{m // 2}" for m in range(n_members)], persons


@pytest.mark.parametrize("name", names("voter"))
def test_voter_fits_on_nan_padded_oof_and_votes_rows_that_sum_to_one(name):
    import inspect

    probs, y, groups, persons = oof_like()
    voter = build("voter", name)
    accepted = inspect.signature(voter.fit).parameters
    extra = {k: v for k, v in (("groups", groups), ("persons", persons)) if k in accepted}
    assert voter.fit(probs, y, **extra) is voter
    out = voter(probs)
    assert out.shape == probs.shape[1:]
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-6)
    eval_like = np.nan_to_num(probs, nan=0.2)        # every member predicts every eval image
    assert np.isfinite(voter(eval_like)).all()
    crossfit = getattr(voter, "crossfit_oof", None)
    if crossfit is not None:                          # learned voters expose honest OOF predictions
        assert crossfit.shape == out.shape


@pytest.mark.parametrize("name", names("decision"))
def test_decision_fits_on_oof_scores_18_classes_and_round_trips_its_parameters(name):
    import json

    from ensemble_core.ensemble.decision import log_probs

    rng = np.random.default_rng(0)
    y = np.arange(900) % 18
    z = rng.normal(size=(900, 18))
    z[np.arange(900), y] += 2.0
    log_p = log_probs(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    rule = build("decision", name)
    for attr in ("force", "match_confidence", "cv_folds"):
        assert hasattr(rule, attr), f"decision {name} must take and keep the parameter {attr!r}"
    assert rule.fit(log_p[:600], y[:600]) is rule
    scores = rule(log_p[600:])
    assert scores.shape == (300, 18) and np.isfinite(scores).all()
    fitted = json.loads(json.dumps(rule.fitted()))
    again = build("decision", name).load(fitted)
    assert (again(log_p[600:]).argmax(axis=1) == scores.argmax(axis=1)).all()
