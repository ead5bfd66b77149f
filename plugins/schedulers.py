"""Learning-rate schedulers: every scheduler of ``timm.scheduler`` by name, plus the seed's names.

Factory: ``factory(optimizer, epochs, steps_per_epoch, **params) -> ScheduledLR``.

- ``timm_<name>`` for every ``create_scheduler_v2`` schedule (:data:`TIMM_SCHEDULERS`: ``timm_cosine``
  with warm-up and restarts, ``timm_step``, ``timm_multistep``, ``timm_plateau``, ``timm_poly``,
  ``timm_tanh``, ``timm_wsd``, ``timm_rsqrt``, ``timm_constant``). Parameters are
  ``create_scheduler_v2``'s own (``min_lr``, ``warmup_epochs``, ``warmup_lr``, ``cycle_limit``, ...);
  ``num_epochs`` is the member's ``epochs``, and ``interval: step`` steps it per batch
  (``step_on_epochs=False`` with the member's steps per epoch); ``timm_plateau`` watches the validation
  macro F1 (``plateau_mode: max``). The prefix keeps them apart from the seed's names below.
- The seed's names keep their parameters and learning-rate curves and are timm schedules underneath:
  ``cosine_warm_restarts`` (timm cosine with unlimited restarts), ``cosine`` (warm-up + one cosine,
  per batch), ``step`` and ``constant`` (timm step). ``onecycle`` stays torch's ``OneCycleLR``
  (timm has no one-cycle schedule).

A timm scheduler is stepped through :class:`TimmLR`, which counts epochs / updates the way a torch
scheduler does, so the training loop, checkpoints and resume treat both alike.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any, Mapping

from ensemble_core.errors import TrainingError
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec, LazyFactory

# the schedules of timm.scheduler.create_scheduler_v2 (timm 1.0.31); registered as timm_<name>
TIMM_SCHEDULERS: dict[str, str] = {
    "cosine": "cosine decay with linear warm-up, restarts (cycle_limit, cycle_mul, cycle_decay) and k-decay",
    "tanh": "tanh decay with warm-up and restarts",
    "step": "lr *= decay_rate every decay_epochs, with warm-up",
    "multistep": "lr *= decay_rate at each of decay_milestones, with warm-up",
    "plateau": "lr *= decay_rate after patience_epochs without a better validation macro F1",
    "poly": "polynomial decay (power decay_rate) with warm-up and restarts",
    "wsd": "warm-up, stable, then decay over the last decay_epochs",
    "rsqrt": "warm-up, reciprocal square-root stable phase, then decay",
    "constant": "constant lr after an optional warm-up",
}
TIMM_PREFIX = "timm_"
# create_scheduler_v2 arguments the engine sets from the member (or that `interval` replaces)
ENGINE_SET = ("optimizer", "sched", "num_epochs", "updates_per_epoch", "step_on_epochs")
CYCLES_UNLIMITED = 2 ** 31  # cosine_warm_restarts restarts for the whole run, like torch's


class TimmLR:
    """A timm scheduler stepped like a torch one: ``step()`` after every epoch (``per_update=False``)
    or optimizer update. ``wants_metric``: the engine passes the epoch's validation macro F1."""

    def __init__(self, scheduler, per_update: bool, wants_metric: bool = False):
        self.scheduler, self.per_update, self.wants_metric = scheduler, per_update, wants_metric
        self.t = 0

    def step(self, metric: float | None = None) -> None:
        self.t += 1
        if self.per_update:
            self.scheduler.step_update(self.t, metric)
        else:
            self.scheduler.step(self.t, metric)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "timm": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "t" not in state and "last_epoch" in state:
            # a checkpoint of a torch scheduler (before these names were timm's): the curve is a
            # function of the step count, which torch kept in last_epoch
            self.t = int(state["last_epoch"])
            return
        self.t = int(state["t"])
        self.scheduler.load_state_dict(dict(state["timm"]))


def _scheduled(scheduler, interval: str):
    from ensemble_core.train.schedule import ScheduledLR
    return ScheduledLR(scheduler, interval)


def _check_interval(name: str, interval: str) -> None:
    if interval not in ("epoch", "step"):
        raise TrainingError(f"scheduler {name!r}: interval must be 'epoch' or 'step', got {interval!r}")


class TimmScheduler(LazyFactory):
    """Factory for one ``create_scheduler_v2`` schedule; its signature is timm's (imports timm on first use)."""

    def __init__(self, sched: str):
        super().__init__(sched)
        self.sched = sched

    def make_signature(self) -> inspect.Signature:
        from timm.scheduler import create_scheduler_v2

        P = inspect.Parameter
        own = [p.replace(kind=P.KEYWORD_ONLY) for n, p in inspect.signature(create_scheduler_v2).parameters.items()
               if n not in ENGINE_SET]
        head = [P(n, P.POSITIONAL_OR_KEYWORD) for n in ("optimizer", "epochs", "steps_per_epoch")]
        return inspect.Signature(head + own + [P("interval", P.KEYWORD_ONLY, default="epoch")])

    def __call__(self, optimizer, epochs: int, steps_per_epoch: int, interval: str = "epoch", **params):
        from timm.scheduler import create_scheduler_v2

        name = TIMM_PREFIX + self.sched
        _check_interval(name, interval)
        if self.sched == "plateau" and interval != "epoch":
            raise TrainingError(f"scheduler {name!r} steps once per epoch on the validation macro F1; "
                                f"remove interval: {interval!r}")
        per_update = interval == "step"
        try:
            scheduler, _ = create_scheduler_v2(optimizer, sched=self.sched, num_epochs=int(epochs),
                                               step_on_epochs=not per_update,
                                               updates_per_epoch=max(1, int(steps_per_epoch)), **params)
        except (AssertionError, ValueError) as exc:
            raise TrainingError(f"scheduler {name!r}: timm refused the parameters {params}: {exc}") from exc
        return _scheduled(TimmLR(scheduler, per_update, wants_metric=self.sched == "plateau"), interval)


# ---------------------------------------------------------------- the seed's names, on timm schedules
def cosine_warm_restarts(optimizer, epochs: int, steps_per_epoch: int, T_0: int = 10, T_mult: int = 1,
                         eta_min: float = 0.0, interval: str = "epoch"):
    """The seed's CosineAnnealingWarmRestarts (T_0 in epochs, cycles T_mult times longer each time);
    ``interval: step`` moves it every batch."""
    from timm.scheduler import CosineLRScheduler

    _check_interval("cosine_warm_restarts", interval)
    per_update = interval == "step"
    t_0 = int(T_0) * (max(1, int(steps_per_epoch)) if per_update else 1)
    sched = CosineLRScheduler(optimizer, t_initial=t_0, lr_min=eta_min, cycle_mul=T_mult, cycle_decay=1.0,
                              cycle_limit=CYCLES_UNLIMITED, t_in_epochs=not per_update)
    return _scheduled(TimmLR(sched, per_update), interval)


def cosine(optimizer, epochs: int, steps_per_epoch: int, eta_min: float = 0.0, warmup_epochs: float = 0.0,
           warmup_factor: float = 0.1):
    """Linear warm-up from warmup_factor x lr, then one cosine decay to eta_min over the rest of the run
    (per batch)."""
    from timm.scheduler import CosineLRScheduler

    total = max(1, int(epochs) * int(steps_per_epoch))
    warm = int(round(warmup_epochs * steps_per_epoch))
    lr = optimizer.param_groups[0]["lr"]
    sched = CosineLRScheduler(optimizer, t_initial=max(1, total - warm), lr_min=eta_min, warmup_t=max(0, warm),
                              warmup_lr_init=warmup_factor * lr, warmup_prefix=True, t_in_epochs=False)
    return _scheduled(TimmLR(sched, per_update=True), "step")


def step(optimizer, epochs: int, steps_per_epoch: int, step_size: int = 5, gamma: float = 0.1):
    """Multiply the learning rate by gamma every step_size epochs."""
    from timm.scheduler import StepLRScheduler

    return _scheduled(TimmLR(StepLRScheduler(optimizer, decay_t=step_size, decay_rate=gamma), False), "epoch")


def constant(optimizer, epochs: int, steps_per_epoch: int):
    """Keep the optimizer's learning rate."""
    from timm.scheduler import StepLRScheduler

    return _scheduled(TimmLR(StepLRScheduler(optimizer, decay_t=1, decay_rate=1.0), False), "epoch")


def onecycle(optimizer, epochs: int, steps_per_epoch: int, max_lr: float | None = None, pct_start: float = 0.3,
             div_factor: float = 25.0, final_div_factor: float = 1e4):
    """One-cycle policy per batch; max_lr defaults to the optimizer's lr (torch; timm has no one-cycle)."""
    import torch
    if max_lr is None:
        max_lr = [g["lr"] for g in optimizer.param_groups]
    return _scheduled(torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=max(1, steps_per_epoch), pct_start=pct_start,
        div_factor=div_factor, final_div_factor=final_div_factor), "step")


timm_schedulers = SimpleNamespace(**{name: TimmScheduler(name) for name in TIMM_SCHEDULERS})


@hookimpl
def ensemble_register_schedulers():
    seed = [
        ComponentSpec("cosine_warm_restarts", "scheduler", f"{__name__}:cosine_warm_restarts",
                      description="cosine with warm restarts (T_0 epochs, T_mult, eta_min) as in the seed [timm cosine]"),
        ComponentSpec("cosine", "scheduler", f"{__name__}:cosine",
                      description="linear warmup + cosine decay over the run, per batch [timm cosine]"),
        ComponentSpec("onecycle", "scheduler", f"{__name__}:onecycle",
                      description="one-cycle policy, per batch [torch OneCycleLR]"),
        ComponentSpec("constant", "scheduler", f"{__name__}:constant", description="constant learning rate"),
        ComponentSpec("step", "scheduler", f"{__name__}:step",
                      description="lr *= gamma every step_size epochs [timm step]"),
    ]
    return seed + [ComponentSpec(TIMM_PREFIX + name, "scheduler", f"{__name__}:timm_schedulers.{name}",
                                 description=f"{desc} [timm {name}]") for name, desc in TIMM_SCHEDULERS.items()]
