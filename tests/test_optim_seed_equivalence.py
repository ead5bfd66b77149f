"""The seed's optimizer and scheduler names build the same objects with the same learning-rate curve.

The reference side is written out here with plain torch, exactly as the hand-written factories of
plugins/optimizers.py and plugins/schedulers.py built them before those names were backed by timm;
the registry side is whatever the names resolve to now. Equal param groups and equal learning-rate
curves (also across a checkpoint round trip) mean recipes keep training the same way.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from ensemble_core.manager import get_registry  # noqa: E402
from ensemble_core.train.schedule import ScheduledLR  # noqa: E402

EPOCHS, STEPS = 7, 4


def params():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    return [p for p in model.parameters() if p.requires_grad]


# ---- the seed's factories, as they were (reference) -------------------------------------------
def ref_optimizer(name, ps, **kw):
    O = torch.optim
    if name == "adam":
        return O.Adam(ps, lr=kw.get("lr", 1e-3), weight_decay=kw.get("weight_decay", 0.0),
                      betas=tuple(kw.get("betas", (0.9, 0.999))), eps=kw.get("eps", 1e-8))
    if name == "adamw":
        return O.AdamW(ps, lr=kw.get("lr", 1e-3), weight_decay=kw.get("weight_decay", 0.01),
                       betas=tuple(kw.get("betas", (0.9, 0.999))), eps=kw.get("eps", 1e-8))
    if name == "sgd":
        momentum = kw.get("momentum", 0.9)
        return O.SGD(ps, lr=kw.get("lr", 0.01), momentum=momentum, weight_decay=kw.get("weight_decay", 0.0),
                     nesterov=kw.get("nesterov", True) and momentum > 0)
    raise AssertionError(name)


def ref_scheduler(name, opt, epochs, steps, **kw):
    S = torch.optim.lr_scheduler
    if name == "cosine_warm_restarts":
        interval = kw.get("interval", "epoch")
        t0 = kw.get("T_0", 10) * (steps if interval == "step" else 1)
        return ScheduledLR(S.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=kw.get("T_mult", 1),
                                                         eta_min=kw.get("eta_min", 0.0)), interval)
    if name == "cosine":
        total = max(1, epochs * steps)
        warm = int(round(kw.get("warmup_epochs", 0.0) * steps))
        cos = S.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=kw.get("eta_min", 0.0))
        if warm <= 0:
            return ScheduledLR(cos, "step")
        lin = S.LinearLR(opt, start_factor=kw.get("warmup_factor", 0.1), total_iters=warm)
        return ScheduledLR(S.SequentialLR(opt, [lin, cos], milestones=[warm]), "step")
    if name == "onecycle":
        max_lr = kw.get("max_lr") or [g["lr"] for g in opt.param_groups]
        return ScheduledLR(S.OneCycleLR(opt, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps,
                                        pct_start=kw.get("pct_start", 0.3), div_factor=kw.get("div_factor", 25.0),
                                        final_div_factor=kw.get("final_div_factor", 1e4)), "step")
    if name == "constant":
        return ScheduledLR(S.LambdaLR(opt, lambda _: 1.0), "epoch")
    if name == "step":
        return ScheduledLR(S.StepLR(opt, step_size=kw.get("step_size", 5), gamma=kw.get("gamma", 0.1)), "epoch")
    raise AssertionError(name)


OPTIMIZER_CASES = [
    ("adam", {}),
    ("adam", {"lr": 1e-5, "weight_decay": 1e-5}),            # the seed's gender / age models
    ("adam", {"betas": [0.8, 0.99], "eps": 1e-6}),           # YAML gives betas as a list
    ("adamw", {}),
    ("adamw", {"lr": 3e-3, "weight_decay": 0.01}),           # the seed's mask model
    ("sgd", {}),
    ("sgd", {"momentum": 0.0}),                              # no momentum: Nesterov switched off
    ("sgd", {"nesterov": False, "weight_decay": 1e-4, "lr": 0.1}),
]


def group_settings(opt):
    return [{k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "params"}
            for g in opt.param_groups]


@pytest.mark.parametrize("name,kw", OPTIMIZER_CASES)
def test_seed_optimizer_names_build_the_same_optimizer(name, kw):
    expected = ref_optimizer(name, params(), **kw)
    got = get_registry().build("optimizer", name, params(), **kw)
    assert type(got) is type(expected)
    assert group_settings(got) == group_settings(expected)
    assert len(got.param_groups[0]["params"]) == len(expected.param_groups[0]["params"])


def lr_curve(schedule, opt, epochs=EPOCHS, steps=STEPS, start_epoch=0):
    """The learning rate of every optimizer step, stepping the schedule as the training loop does."""
    lrs = []
    for _ in range(start_epoch, epochs):
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if schedule.interval == "step":
                schedule.scheduler.step()
        if schedule.interval == "epoch":
            schedule.scheduler.step()
    return lrs


SCHEDULER_CASES = [
    ("cosine_warm_restarts", {}),
    ("cosine_warm_restarts", {"T_0": 3, "T_mult": 1, "eta_min": 1e-3}),     # the seed's mask model, short
    ("cosine_warm_restarts", {"T_0": 2, "T_mult": 2, "eta_min": 1e-7}),
    ("cosine_warm_restarts", {"T_0": 2, "eta_min": 1e-4, "interval": "step"}),
    ("cosine", {}),
    ("cosine", {"warmup_epochs": 1.5, "warmup_factor": 0.1, "eta_min": 1e-5}),
    ("onecycle", {}),
    ("onecycle", {"max_lr": 0.05, "pct_start": 0.2}),
    ("constant", {}),
    ("step", {}),
    ("step", {"step_size": 2, "gamma": 0.5}),
]


@pytest.mark.parametrize("name,kw", SCHEDULER_CASES)
def test_seed_scheduler_names_give_the_same_learning_rate_curve(name, kw):
    opt_ref = ref_optimizer("adamw", params(), lr=0.01)
    expected = ref_scheduler(name, opt_ref, EPOCHS, STEPS, **kw)
    opt = get_registry().build("optimizer", "adamw", params(), lr=0.01)
    got = get_registry().build("scheduler", name, opt, EPOCHS, STEPS, **kw)
    assert isinstance(got, ScheduledLR) and got.interval == expected.interval
    want, have = lr_curve(expected, opt_ref), lr_curve(got, opt)
    assert len(have) == EPOCHS * STEPS
    for i, (w, h) in enumerate(zip(want, have)):
        assert math.isclose(h, w, rel_tol=1e-9, abs_tol=1e-15), (i, want, have)


@pytest.mark.parametrize("name,kw", [c for c in SCHEDULER_CASES if c[1]])
def test_seed_scheduler_resumes_from_its_state_dict_on_the_same_curve(name, kw):
    """What a resume does: a fresh optimizer + scheduler load the saved states and continue."""
    reg = get_registry()
    ps = params()
    opt = reg.build("optimizer", "adamw", ps, lr=0.01)
    sched = reg.build("scheduler", name, opt, EPOCHS, STEPS, **kw)
    full = lr_curve(sched, opt)

    ps2 = params()
    opt2 = reg.build("optimizer", "adamw", ps2, lr=0.01)
    first = reg.build("scheduler", name, opt2, EPOCHS, STEPS, **kw)
    head = lr_curve(first, opt2, epochs=3)
    saved_opt, saved_sched = opt2.state_dict(), first.scheduler.state_dict()

    opt3 = reg.build("optimizer", "adamw", params(), lr=0.01)
    again = reg.build("scheduler", name, opt3, EPOCHS, STEPS, **kw)
    opt3.load_state_dict(saved_opt)
    again.scheduler.load_state_dict(saved_sched)
    tail = lr_curve(again, opt3, start_epoch=3)
    for i, (w, h) in enumerate(zip(full, head + tail)):
        assert math.isclose(h, w, rel_tol=1e-9, abs_tol=1e-15), (i, full, head + tail)


@pytest.mark.parametrize("name,kw", [c for c in SCHEDULER_CASES if c[0] != "onecycle"])
def test_checkpoint_of_the_torch_scheduler_resumes_on_the_same_curve(name, kw):
    """A run folder checkpointed before these names were timm-backed holds a torch scheduler's state;
    resuming it continues the seed's curve where it stopped."""
    reg = get_registry()
    opt_ref = ref_optimizer("adamw", params(), lr=0.01)
    reference = ref_scheduler(name, opt_ref, EPOCHS, STEPS, **kw)
    full = lr_curve(reference, opt_ref)

    opt_old = ref_optimizer("adamw", params(), lr=0.01)
    old = ref_scheduler(name, opt_old, EPOCHS, STEPS, **kw)
    head = lr_curve(old, opt_old, epochs=3)
    saved_opt, saved_sched = opt_old.state_dict(), old.scheduler.state_dict()

    opt = reg.build("optimizer", "adamw", params(), lr=0.01)
    new = reg.build("scheduler", name, opt, EPOCHS, STEPS, **kw)
    opt.load_state_dict(saved_opt)
    new.scheduler.load_state_dict(saved_sched)
    tail = lr_curve(new, opt, start_epoch=3)
    for i, (w, h) in enumerate(zip(full, head + tail)):
        assert math.isclose(h, w, rel_tol=1e-9, abs_tol=1e-15), (i, full, head + tail)
