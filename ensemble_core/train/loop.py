"""One training epoch and one inference pass; nothing here knows about run folders."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ensemble_core.errors import TrainingError
from ensemble_core.train.components import Precision
from ensemble_core.train.predict import probs_from_views
from ensemble_core.train.schedule import ScheduledLR


@dataclass
class NonFiniteGuard:
    """Counts consecutive steps whose loss is NaN / inf (their update is skipped); raises at the limit."""

    limit: int
    consecutive: int = 0
    total: int = 0

    def check(self, loss_value: float, epoch: int, step: int) -> bool:
        if math.isfinite(loss_value):
            self.consecutive = 0
            return True
        self.consecutive += 1
        self.total += 1
        if self.consecutive >= self.limit:
            raise TrainingError(
                f"loss was {loss_value} for {self.consecutive} consecutive steps (epoch {epoch + 1}, step {step + 1}; "
                f"limit max_nonfinite_steps={self.limit}); stopped without saving these weights. Lower the "
                f"learning rate, set grad_clip (e.g. 1.0), or use amp: fp32; the last good checkpoint is kept.")
        return False


def to_device(images: torch.Tensor, precision: Precision, augment: Callable | None = None) -> torch.Tensor:
    """Move a batch to the device; ``augment`` (``augment_on: device``) turns the uint8 batch into an
    augmented, normalised float batch there."""
    images = images.to(precision.device, non_blocking=True)
    if augment is not None:
        images = augment(images)
    if precision.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def train_one_epoch(model: nn.Module, loader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: ScheduledLR | None, scaler, precision: Precision, guard: NonFiniteGuard, epoch: int,
                    batch_augmentation: Callable | None = None, ema=None, grad_clip: float | None = None,
                    progress=None, start_step: int = 0, should_stop: Callable[[], bool] | None = None,
                    device_augment: Callable | None = None, carried: dict | None = None,
                    fine_tuning=None) -> dict:
    """Train over ``loader`` (which already skips the first ``start_step`` batches of the epoch).

    ``should_stop`` is asked before every step after the first one of this call; when it says yes
    the epoch is left unfinished and ``stopped_at_step`` (the next step to run) is returned, with the
    epoch's running ``loss_sum`` / ``n_finite``; passing those back as ``carried`` when the epoch is
    resumed gives the same ``train_loss`` as an epoch that was never stopped. ``fine_tuning`` (a
    :class:`~ensemble_core.train.finetune.FineTuning`) sets which parts train before every step.
    """
    model.train()
    if fine_tuning is not None:
        fine_tuning.start_epoch()
    carried = carried or {}
    loss_sum, n_seen, n_finite, start = float(carried.get("loss_sum", 0.0)), 0, int(carried.get("n_finite", 0)), \
        time.perf_counter()
    stopped_at = None
    for step, (images, targets) in enumerate(loader, start=start_step):
        if should_stop is not None and step > start_step and should_stop():
            stopped_at = step
            break
        if fine_tuning is not None:
            fine_tuning.before_step(epoch, step)
        images = to_device(images, precision, device_augment)
        targets = targets.to(precision.device, non_blocking=True)
        if batch_augmentation is not None:
            images, targets = batch_augmentation(images, targets)
        with precision.autocast():
            logits = model(images)
        loss = loss_fn(logits.float(), targets)
        value = float(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        if guard.check(value, epoch, step):
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(grad_clip))
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if ema is not None:
                ema.update(model)
            loss_sum += value * len(images)
            n_finite += len(images)
        if schedule is not None and schedule.interval == "step":
            schedule.scheduler.step()
        n_seen += len(images)
        if progress is not None:
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress.update(1)
            progress.set_postfix(loss=f"{value:.4f}", img_s=f"{n_seen / elapsed:.0f}", refresh=False)
    elapsed = max(time.perf_counter() - start, 1e-9)
    return {"train_loss": loss_sum / n_finite if n_finite else float("nan"),
            "images_per_s": n_seen / elapsed, "train_seconds": elapsed, "nonfinite_steps": guard.total,
            "stopped_at_step": stopped_at, "loss_sum": loss_sum, "n_finite": n_finite}


@torch.no_grad()
def infer(model: nn.Module, loader, precision: Precision, views: Sequence[Callable | None] = (None,),
          loss_fn: nn.Module | None = None) -> tuple[list[np.ndarray], float | None]:
    """Logits of every sample for each view (``None`` = identity) and the mean loss on the identity view."""
    model.eval()
    outputs: list[list[np.ndarray]] = [[] for _ in views]
    loss_sum, n = 0.0, 0
    for images, targets in loader:
        images = to_device(images, precision)
        for v, view in enumerate(views):
            with precision.autocast():
                logits = model(images if view is None else view(images)).float()
            outputs[v].append(logits.cpu().numpy())
            if v == 0 and loss_fn is not None:
                targets = targets.to(precision.device)
                loss_sum += float(loss_fn(logits, targets)) * len(images)
                n += len(images)
    logits = [np.concatenate(o) if o else np.zeros((0, 0), np.float32) for o in outputs]
    return logits, (loss_sum / n if loss_fn is not None and n else None)


def member_probs(model: nn.Module, loader, precision: Precision, task, views: Sequence[Callable | None]) -> np.ndarray:
    """A member's probabilities over its task's original classes for every image of ``loader``: the mean over
    ``views`` (identity + TTA) of ``task.probs(logits)``. What ``eval.npz`` / ``oof.npz`` hold, and what
    ``predict`` computes for new images."""
    logits, _ = infer(model, loader, precision, views)
    return probs_from_views(task, logits)
