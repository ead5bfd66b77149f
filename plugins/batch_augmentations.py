"""Built-in batch augmentations: CutMix, MixUp and a class-targeted CutMix.

Each factory takes the engine-supplied ``num_classes`` and returns a callable
``(images (N,C,H,W) float tensor, targets (N,) int64) -> (images, soft_targets (N, num_classes))``.
``cutmix`` and ``mixup`` also take soft targets (``mixes_soft_targets``), which is how they serve a
multi-head task: the engine hands them one row of per-head one-hot blocks and splits the mixed row back
per head (``ensemble_core.train.components.HeadSoftTargets``). ``class_cutmix`` picks samples by class
id, so it stays with one-head tasks.
Randomness comes from torch's global generator, which the trainer seeds, so a
seed gives the same augmentation sequence.
"""
from __future__ import annotations

import math

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


def _one_hot(targets, num_classes: int):
    import torch

    return torch.nn.functional.one_hot(targets.long(), num_classes).to(torch.float32)


def _beta(alpha: float) -> float:
    import torch

    a = torch.tensor(float(alpha))
    return float(torch.distributions.Beta(a, a).sample())


def _random_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """A box covering about ``1 - lam`` of the image, centred at a random point (clipped)."""
    import torch

    cut = math.sqrt(max(0.0, 1.0 - lam))
    ch, cw = int(height * cut), int(width * cut)
    cy = int(torch.randint(height, (1,)))
    cx = int(torch.randint(width, (1,)))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, height)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, width)
    return y0, y1, x0, x1


def _soft_targets_and_partners(images, targets, num_classes: int, prob: float):
    """One-hot targets (soft ones pass as they are: a multi-head task's blocks), and a random partner
    permutation with probability ``prob`` (else None)."""
    import torch

    soft = targets.to(torch.float32) if targets.is_floating_point() else _one_hot(targets, num_classes)
    soft = soft.to(images.device)
    if float(torch.rand(1)) >= prob or len(images) < 2:
        return soft, None
    return soft, torch.randperm(len(images)).to(images.device)


class CutMix:
    """Paste a box from a shuffled partner; targets mix by the pasted area."""

    mixes_soft_targets = True     # takes soft targets as well (a multi-head task's per-head blocks)

    def __init__(self, num_classes: int, alpha: float = 1.0, prob: float = 0.5):
        self.num_classes, self.alpha, self.prob = num_classes, alpha, prob

    def __call__(self, images, targets):
        soft, perm = _soft_targets_and_partners(images, targets, self.num_classes, self.prob)
        if perm is None:
            return images, soft
        y0, y1, x0, x1 = _random_box(images.shape[-2], images.shape[-1], _beta(self.alpha))
        images = images.clone()
        images[:, :, y0:y1, x0:x1] = images[perm][:, :, y0:y1, x0:x1]
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (images.shape[-2] * images.shape[-1])
        return images, kept * soft + (1.0 - kept) * soft[perm]


class MixUp:
    """Blend each image with a shuffled partner by lam ~ Beta(alpha, alpha)."""

    mixes_soft_targets = True

    def __init__(self, num_classes: int, alpha: float = 0.4, prob: float = 0.5):
        self.num_classes, self.alpha, self.prob = num_classes, alpha, prob

    def __call__(self, images, targets):
        soft, perm = _soft_targets_and_partners(images, targets, self.num_classes, self.prob)
        if perm is None:
            return images, soft
        lam = _beta(self.alpha)
        return lam * images + (1 - lam) * images[perm], lam * soft + (1 - lam) * soft[perm]


class ClassCutMix:
    """CutMix that always pastes in a sample of ``target_class`` (e.g. the rare age 60+).

    Samples of the target class(es) seen in training batches are kept in a bank
    of at most ``bank_size`` images; with probability ``prob`` each image of the
    batch gets a box from a random bank entry, and its soft target moves towards
    that entry's class by the pasted area. Before the first target-class sample
    is seen, batches pass through unchanged.
    """

    def __init__(self, num_classes: int, target_class: int | list[int] = 2, prob: float = 0.5,
                 alpha: float = 1.0, bank_size: int = 64):
        classes = [target_class] if isinstance(target_class, int) else list(target_class)
        bad = [c for c in classes if not isinstance(c, int) or not 0 <= c < num_classes]
        if bad or not classes:
            raise ValueError(f"class_cutmix: target_class {target_class!r} must be a class id (or list of ids) "
                             f"in [0, {num_classes}) of this task")
        self.num_classes, self.classes, self.prob, self.alpha = num_classes, classes, prob, alpha
        self.bank_size = bank_size
        self._bank_images = None
        self._bank_targets = None

    def _remember(self, images, targets):
        import torch

        keep = torch.isin(targets, torch.tensor(self.classes, device=targets.device))
        if not bool(keep.any()):
            return
        imgs, tgts = images[keep].detach(), targets[keep]
        if self._bank_images is None or self._bank_images.shape[1:] != imgs.shape[1:]:
            self._bank_images, self._bank_targets = imgs, tgts
        else:
            self._bank_images = torch.cat([imgs, self._bank_images])
            self._bank_targets = torch.cat([tgts, self._bank_targets])
        self._bank_images = self._bank_images[: self.bank_size]
        self._bank_targets = self._bank_targets[: self.bank_size]

    def __call__(self, images, targets):
        import torch

        soft = _one_hot(targets, self.num_classes).to(images.device)
        self._remember(images, targets)
        if self._bank_images is None:
            return images, soft
        images = images.clone()
        h, w = images.shape[-2:]
        chosen = torch.rand(len(images)) < self.prob
        for i in torch.nonzero(chosen).flatten().tolist():
            j = int(torch.randint(len(self._bank_images), (1,)))
            y0, y1, x0, x1 = _random_box(h, w, _beta(self.alpha))
            if y1 <= y0 or x1 <= x0:
                continue
            images[i, :, y0:y1, x0:x1] = self._bank_images[j, :, y0:y1, x0:x1].to(images.dtype)
            pasted = (y1 - y0) * (x1 - x0) / (h * w)
            soft[i] = (1 - pasted) * soft[i] + pasted * _one_hot(self._bank_targets[j:j + 1],
                                                                 self.num_classes)[0].to(soft.device)
        return images, soft


def cutmix(num_classes: int, alpha: float = 1.0, prob: float = 0.5) -> CutMix:
    return CutMix(num_classes, alpha=alpha, prob=prob)


def mixup(num_classes: int, alpha: float = 0.4, prob: float = 0.5) -> MixUp:
    return MixUp(num_classes, alpha=alpha, prob=prob)


def class_cutmix(num_classes: int, target_class: int | list[int] = 2, prob: float = 0.5, alpha: float = 1.0,
                 bank_size: int = 64) -> ClassCutMix:
    return ClassCutMix(num_classes, target_class=target_class, prob=prob, alpha=alpha, bank_size=bank_size)


@hookimpl
def ensemble_register_batch_augmentations():
    return [
        ComponentSpec("cutmix", "batch_augmentation", f"{__name__}:cutmix",
                      description="CutMix: paste a box from another image of the batch (prob, alpha)"),
        ComponentSpec("mixup", "batch_augmentation", f"{__name__}:mixup",
                      description="MixUp: blend two images of the batch (prob, alpha)"),
        ComponentSpec("class_cutmix", "batch_augmentation", f"{__name__}:class_cutmix",
                      description="CutMix that always pastes in a sample of target_class (e.g. age 60+ = 2)"),
    ]
