"""Built-in optimizers (torch.optim). Factory: ``factory(parameters, **params)``."""
from __future__ import annotations

from typing import Sequence

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


def adam(parameters, lr: float = 1e-3, weight_decay: float = 0.0, betas: Sequence[float] = (0.9, 0.999),
         eps: float = 1e-8):
    import torch
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


def adamw(parameters, lr: float = 1e-3, weight_decay: float = 0.01, betas: Sequence[float] = (0.9, 0.999),
          eps: float = 1e-8):
    import torch
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


def sgd(parameters, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = True):
    import torch
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov and momentum > 0)


@hookimpl
def ensemble_register_optimizers():
    return [
        ComponentSpec("adam", "optimizer", f"{__name__}:adam",
                      description="Adam (seed's gender/age models: lr 1e-5, weight_decay 1e-5)"),
        ComponentSpec("adamw", "optimizer", f"{__name__}:adamw",
                      description="AdamW, decoupled weight decay (seed's mask model: weight_decay 0.01)"),
        ComponentSpec("sgd", "optimizer", f"{__name__}:sgd", description="SGD with (Nesterov) momentum"),
    ]
