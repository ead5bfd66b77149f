"""Built-in learning-rate schedulers.

Factory: ``factory(optimizer, epochs, steps_per_epoch, **params) -> ScheduledLR``.
``interval: step`` makes the epoch-based ones step fractionally every batch
(periods stay measured in epochs).
"""
from __future__ import annotations

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


def _scheduled(scheduler, interval: str):
    from ensemble_core.train.schedule import ScheduledLR
    return ScheduledLR(scheduler, interval)


def cosine_warm_restarts(optimizer, epochs: int, steps_per_epoch: int, T_0: int = 10, T_mult: int = 1,
                         eta_min: float = 0.0, interval: str = "epoch"):
    """The seed's CosineAnnealingWarmRestarts; T_0 in epochs."""
    import torch
    if interval == "step":
        T_0 = T_0 * steps_per_epoch
    return _scheduled(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=T_0, T_mult=T_mult, eta_min=eta_min), interval)


def cosine(optimizer, epochs: int, steps_per_epoch: int, eta_min: float = 0.0, warmup_epochs: float = 0.0,
           warmup_factor: float = 0.1):
    """Linear warmup then one cosine decay to eta_min over the whole run (steps per batch)."""
    import torch
    total = max(1, epochs * steps_per_epoch)
    warm = int(round(warmup_epochs * steps_per_epoch))
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warm), eta_min=eta_min)
    if warm <= 0:
        return _scheduled(cos, "step")
    lin = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=warmup_factor, total_iters=warm)
    return _scheduled(torch.optim.lr_scheduler.SequentialLR(optimizer, [lin, cos], milestones=[warm]), "step")


def onecycle(optimizer, epochs: int, steps_per_epoch: int, max_lr: float | None = None, pct_start: float = 0.3,
             div_factor: float = 25.0, final_div_factor: float = 1e4):
    """One-cycle policy per batch; max_lr defaults to the optimizer's lr."""
    import torch
    if max_lr is None:
        max_lr = [g["lr"] for g in optimizer.param_groups]
    return _scheduled(torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=max(1, steps_per_epoch), pct_start=pct_start,
        div_factor=div_factor, final_div_factor=final_div_factor), "step")


def constant(optimizer, epochs: int, steps_per_epoch: int):
    """Keep the optimizer's learning rate."""
    import torch
    return _scheduled(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), "epoch")


def step(optimizer, epochs: int, steps_per_epoch: int, step_size: int = 5, gamma: float = 0.1):
    """Multiply the learning rate by gamma every step_size epochs."""
    import torch
    return _scheduled(torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma), "epoch")


@hookimpl
def ensemble_register_schedulers():
    return [
        ComponentSpec("cosine_warm_restarts", "scheduler", f"{__name__}:cosine_warm_restarts",
                      description="CosineAnnealingWarmRestarts (T_0 epochs, T_mult, eta_min) as in the seed"),
        ComponentSpec("cosine", "scheduler", f"{__name__}:cosine",
                      description="linear warmup + cosine decay over the run, per batch"),
        ComponentSpec("onecycle", "scheduler", f"{__name__}:onecycle", description="one-cycle policy, per batch"),
        ComponentSpec("constant", "scheduler", f"{__name__}:constant", description="constant learning rate"),
        ComponentSpec("step", "scheduler", f"{__name__}:step",
                      description="StepLR: lr *= gamma every step_size epochs"),
    ]
