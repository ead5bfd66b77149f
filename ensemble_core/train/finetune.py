"""Fine-tuning controls of a member (docs/TRAINING.md "Fine-tuning"): layer-wise learning-rate decay, a head-only
warm-up with the backbone frozen, and BatchNorm kept in eval mode.

- ``layer_decay`` d: timm's layer groups (``model.group_matcher``, as ``timm.optim.param_groups_layer_decay``
  groups them): the head learns at the optimizer's rate, each group below it at d times the rate of the one
  above (the stem of tf_efficientnet_lite0 at d^18). The scale is folded into each parameter group's ``lr``, so
  every scheduler (torch's or timm's) scales the groups alike; weight decay stays the optimizer's own.
- ``head_only_epochs`` e: for the first round(e x steps per epoch) training steps only the classifier
  (``model.get_classifier()``) trains; the rest of the network is frozen (no gradients, eval mode: its
  BatchNorm statistics stay those of the weights), then everything trains.
- ``bn_eval``: every BatchNorm layer stays in eval mode while training (running statistics as loaded; their
  scale and shift still learn).

The state at a step depends on (epoch, step) only, so a member stopped and resumed mid-epoch trains the same.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ensemble_core.errors import TrainingError


def layer_decay_groups(model: nn.Module, layer_decay: float) -> list[dict[str, Any]]:
    """Parameter groups with an ``lr_scale`` each (timm's layer grouping), weight decay left to the optimizer."""
    from timm.optim import param_groups_layer_decay

    groups = param_groups_layer_decay(model, weight_decay=0.0, layer_decay=float(layer_decay),
                                      weight_decay_exclude_1d=False)
    return [{"params": g["params"], "lr_scale": float(g["lr_scale"])} for g in groups if g["params"]]


def apply_lr_scales(optimizer: torch.optim.Optimizer) -> list[float]:
    """Fold each group's ``lr_scale`` into its ``lr`` (before any scheduler records the initial rates, so torch's
    and timm's schedulers scale every group alike; timm's would apply a remaining ``lr_scale`` a second time)."""
    scales = []
    for group in optimizer.param_groups:
        scale = float(group.pop("lr_scale", 1.0))
        group["lr"] = float(group["lr"]) * scale
        scales.append(scale)
    return scales


def head_modules(model: nn.Module, member_name: str) -> nn.Module:
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
        raise TrainingError(f"{member_name}: head_only_epochs needs a backbone whose model has get_classifier() "
                            f"returning its classifier (every timm model does); set head_only_epochs: 0")
    return head


class FineTuning:
    """Applies ``head_only_epochs`` and ``bn_eval`` to the model before each training step."""

    def __init__(self, model: nn.Module, member, steps_per_epoch: int):
        self.model = model
        self.head_only_steps = int(round(float(member.head_only_epochs or 0) * int(steps_per_epoch)))
        self.steps_per_epoch = int(steps_per_epoch)
        self.bn_eval = bool(member.bn_eval)
        self.head = head_modules(model, member.run_name) if self.head_only_steps else None
        head_params = set() if self.head is None else {id(p) for p in self.head.parameters()}
        self.body_params = [p for p in model.parameters() if id(p) not in head_params and p.requires_grad]
        self.head_module_ids = set() if self.head is None else {id(m) for m in self.head.modules()}
        self._frozen: bool | None = None   # None: modes not applied since the last model.train()

    @property
    def active(self) -> bool:
        return bool(self.head_only_steps or self.bn_eval)

    def start_epoch(self) -> None:
        """The loop has just called ``model.train()``: modes must be applied again."""
        self._frozen = None

    def before_step(self, epoch: int, step: int) -> None:
        frozen = epoch * self.steps_per_epoch + step < self.head_only_steps
        if frozen == self._frozen:
            return
        for p in self.body_params:
            p.requires_grad_(not frozen)
        for m in self.model.modules():
            if frozen and id(m) not in self.head_module_ids:
                m.training = False            # the frozen body: BatchNorm statistics and dropout as in eval
            elif self.bn_eval and isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.training = False
            else:
                m.training = True
        self._frozen = frozen
