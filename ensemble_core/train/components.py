"""Build what one member needs from its :class:`Member` and the registry: task, model, losses,
optimizer, scheduler, batch augmentation, TTAs, and the device / precision settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ensemble_core.errors import TrainingError
from ensemble_core.labels import Task
from ensemble_core import tasks
from ensemble_core.registry import normalize_ref, without_weights
from ensemble_core.train.finetune import apply_lr_scales, layer_decay_groups
from ensemble_core.train.schedule import ScheduledLR


def build_task(member, registry, label_space=None) -> Task:
    """The member's task with its label transform (what it trains on), on the data set's ``label_space``."""
    return tasks.build_task(registry, member.task, member.label_transform, label_space=label_space)


def build_model(member, task: Task, registry) -> nn.Module:
    return registry.build("backbone", member.backbone, task.num_outputs, field="backbone")


def model_for_prediction(member, task: Task, registry) -> nn.Module:
    """The member's architecture, to be given its own trained weights (``best.pt`` / an export's safetensors):
    built as :func:`build_model` builds it, with the backbone's weight-loading parameters left out
    (:func:`registry.without_weights`), so predicting never downloads or reads pretrained weights (the trained
    ones replace them anyway)."""
    return registry.build("backbone", without_weights(member.backbone), task.num_outputs, field="backbone")


class HeadLosses(nn.Module):
    """One loss per head of a multi-head task, summed. Target column ``i`` belongs to head ``i``;
    negative targets (unknown labels) are left out of that head's loss."""

    def __init__(self, losses: list[nn.Module], slices: list[slice], names: list[str]):
        super().__init__()
        self.losses = nn.ModuleList(losses)
        self.slices, self.names = slices, names

    def forward(self, logits, targets):
        total = logits.new_zeros((), dtype=torch.float32)
        soft = targets.is_floating_point()     # (N, sum of head widths), laid out as the logits (CutMix / MixUp)
        for i, (loss, sl) in enumerate(zip(self.losses, self.slices)):
            if soft:
                t = targets[:, sl]
                mass = t.sum(dim=1)
                keep = mass > 0
                if bool(keep.any()):
                    total = total + loss(logits[keep, sl], t[keep] / mass[keep, None])
                continue
            keep = targets[:, i] >= 0
            if bool(keep.any()):
                total = total + loss(logits[keep, sl], targets[keep, i])
        return total


class HeadSoftTargets:
    """Runs a batch augmentation that mixes soft targets (CutMix, MixUp) on a multi-head task: the ``(N, heads)``
    class ids become one row of one-hot blocks laid out as the logits (an unknown label: a zero block), which
    the augmentation mixes and :class:`HeadLosses` splits back per head."""

    def __init__(self, augmentation: Callable, slices: list[slice]):
        self.augmentation, self.slices = augmentation, slices

    def __call__(self, images, targets):
        width = self.slices[-1].stop
        soft = torch.zeros(len(targets), width, dtype=torch.float32, device=targets.device)
        for i, sl in enumerate(self.slices):
            known = targets[:, i] >= 0
            soft[known, sl.start + targets[known, i]] = 1.0
        return self.augmentation(images, soft)


def build_loss(member, task: Task, registry) -> nn.Module:
    heads = task.heads
    if len(heads) == 1:
        return registry.build("loss", member.loss, field="loss")
    head_losses = dict(getattr(task, "head_losses", None) or {})
    losses = [registry.build("loss", head_losses.get(h.name, member.loss),
                        field=f"task.params.head_losses.{h.name}" if h.name in head_losses else "loss")
              for h in heads]
    return HeadLosses(losses, task.head_slices(), [h.name for h in heads])


def build_optimizer(member, model: nn.Module, registry) -> torch.optim.Optimizer:
    """The member's optimizer over the model's parameters; with ``layer_decay``, over timm's layer groups, each
    group's learning rate scaled (:mod:`ensemble_core.train.finetune`)."""
    if member.layer_decay:
        optimizer = registry.build("optimizer", member.optimizer, layer_decay_groups(model, member.layer_decay),
                                   field="optimizer")
        apply_lr_scales(optimizer)
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    return registry.build("optimizer", member.optimizer, params, field="optimizer")


def build_scheduler(member, optimizer, steps_per_epoch: int, registry) -> ScheduledLR | None:
    if member.scheduler is None:
        return None
    out = registry.build("scheduler", member.scheduler, optimizer, int(member.epochs), int(steps_per_epoch),
                    field="scheduler")
    if not isinstance(out, ScheduledLR):
        name = normalize_ref(member.scheduler)["name"]
        raise TrainingError(f"scheduler {name!r}: its factory returned {type(out).__name__}; scheduler factories "
                            f"must return ensemble_core.train.schedule.ScheduledLR(scheduler, interval)")
    return out


def build_batch_augmentation(member, task: Task, registry) -> Callable | None:
    if member.batch_augmentation is None:
        return None
    augmentation = registry.build("batch_augmentation", member.batch_augmentation, task.num_outputs,
                                  field="batch_augmentation")
    if len(task.heads) == 1:
        return augmentation
    if not getattr(augmentation, "mixes_soft_targets", False):
        raise TrainingError(f"batch_augmentation {normalize_ref(member.batch_augmentation)['name']!r}: works on "
                            f"single-head tasks only; task {task.name!r} has heads "
                            f"{[h.name for h in task.heads]}. Use cutmix or mixup (they mix every head's "
                            f"targets), or remove batch_augmentation for this task.")
    return HeadSoftTargets(augmentation, task.head_slices())


def build_ttas(member, registry) -> list[Callable]:
    """One callable per test-time view; a TTA with several views (``views``, e.g. ``shifts``) gives each."""
    views: list[Callable] = []
    for i, ref in enumerate(member.tta or []):
        tta = registry.build("tta", ref, field=f"tta[{i}]")
        views.extend(getattr(tta, "views", None) or [tta])
    return views


@dataclass
class Precision:
    device: torch.device
    autocast_dtype: torch.dtype | None   # None: fp32
    use_scaler: bool                     # fp16 on CUDA only
    channels_last: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    def autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def choose_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {str(device)!r} requested but CUDA is not available; pass device='cpu'")
    return device


def choose_precision(member, device: torch.device) -> Precision:
    amp = member.amp
    cuda = device.type == "cuda"
    if amp == "auto":
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    elif amp == "bf16":
        dtype = torch.bfloat16
    elif amp == "fp16":
        if not cuda:
            raise TrainingError("amp: fp16 needs a CUDA device; use amp: auto (fp32 on CPU) or bf16")
        dtype = torch.float16
    elif amp == "fp32":
        dtype = None
    else:
        raise TrainingError(f"amp: must be auto, bf16, fp16 or fp32, got {amp!r}")
    channels_last = cuda if member.channels_last == "auto" else bool(member.channels_last)
    return Precision(device, dtype, cuda and dtype == torch.float16, channels_last)
