"""Contract checks: does a registered component do what its hook (``hookspecs.py``) promises?

One check per kind builds the component from its :class:`~ensemble_core.registry.ComponentSpec` and
parameters and exercises it on tiny inputs. A component that breaks its contract raises
:class:`~ensemble_core.errors.ComponentContractError` with one line naming the kind, the component,
its plugin and what is wrong::

    voter 'median' (plugin ensemble_extra): the built object (MedianVote) has no __call__; a voter must be
    callable as voter(probs) -> (N, C)

Three callers:

- :func:`ensemble_core.testing.check_component` (plugin authors, the project's own tests): every check,
  ``thorough=True`` (trains a tiny model one step for losses and optimizers, resumes schedulers, ...);
- :func:`recipe_problems`, called by ``recipe.validate``: the cheap checks (``QUICK_KINDS``) on every
  component a recipe names, with the recipe's parameters, so a broken voter, loss or executor is refused
  before any member trains;
- :func:`check_member`, called when a member is built (before its first epoch): the built backbone maps a
  tiny batch to logits of the task's width, and the built loss gives a finite scalar on them.

This module is core: it imports only the standard library, ``ensemble_core.errors`` / ``registry`` /
``labels``, and numpy / pandas / torch / albumentations inside the functions that need them. Checks
leave the global random generators (``random``, numpy, torch) as they found them, so validating a recipe
never changes what its members train.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from ensemble_core.errors import ComponentContractError, EnsembleCoreError
from ensemble_core.registry import INJECTED_ARGS, KINDS, WEIGHTS_RECORD_ATTR, ComponentSpec, normalize_ref

# kinds whose check is cheap enough to run on every ``validate`` (no model is built)
QUICK_KINDS: tuple[str, ...] = ("voter", "decision", "executor", "loss", "augmentation", "tta",
                                "batch_augmentation", "label_transform", "task", "splitter")
PHOTO_SIZE = (512, 384)      # (H, W) of the competition's photos: validate's test image when load_size is unset
N_EXECUTOR_JOBS = 3


# ---------------------------------------------------------------- naming and failing
def _declares(factory: Any, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def raised(exc: BaseException) -> str:
    return f"raised {type(exc).__name__}: {one_line(exc)}"


@dataclass
class Subject:
    """The component under check: its spec, its parameters, and how to fail naming it."""

    kind: str
    spec: ComponentSpec
    params: Mapping[str, Any] = field(default_factory=dict)
    registry: Any = None   # injected into a factory that declares ``registry`` (as Registry.build does)

    def fail(self, what: str) -> ComponentContractError:
        return ComponentContractError(self.kind, self.spec.name, self.spec.origin, one_line(what))

    def build(self, *engine_args: Any, **extra: Any) -> Any:
        try:
            factory = self.spec.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin names itself
            raise self.fail(f"its factory {self.spec.factory!r} cannot be imported: {raised(exc)}") from exc
        kwargs = {**dict(self.params), **extra}
        if self.registry is not None and "registry" in INJECTED_ARGS and _declares(factory, "registry"):
            kwargs["registry"] = self.registry
        try:
            return factory(*engine_args, **kwargs)
        except EnsembleCoreError as exc:
            raise self.fail(f"building it {raised(exc)}") from exc
        except Exception as exc:  # noqa: BLE001
            shown = f" with params {json.dumps(dict(self.params), default=str)}" if self.params else ""
            raise self.fail(f"building it{shown} {raised(exc)}") from exc

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args)``; an exception becomes a contract error that says which call raised."""
        try:
            return fn(*args, **kwargs)
        except ComponentContractError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.fail(f"{what} {raised(exc)}") from exc

    def need(self, obj: Any, attr: str, contract: str) -> Any:
        value = getattr(obj, attr, None)
        if value is None or not callable(value):
            missing = "no" if value is None else "a non-callable"
            raise self.fail(f"the built object ({type(obj).__name__}) has {missing} {attr}; {contract}")
        return value


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Leave ``random``, numpy's and torch's global generators as they were (checks draw random inputs)."""
    import random
    import sys

    import numpy as np

    state_py, state_np = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    state_torch = torch.random.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(state_py)
        np.random.set_state(state_np)
        if state_torch is not None:   # torch imported by the check itself: nothing drew from it out here
            torch.random.set_rng_state(state_torch)   # (the checks that seed it do so in a nested block)


def _generator(seed: int = 0):
    import torch
    return torch.Generator().manual_seed(seed)


def _is_scalar_tensor(value: Any) -> bool:
    import torch
    return isinstance(value, torch.Tensor) and value.ndim == 0 and value.is_floating_point()


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(value).__name__


# ---------------------------------------------------------------- per kind
def check_backbone_model(s: Subject, model: Any, num_classes: int, image_size: Sequence[int] = (32, 32)) -> None:
    """A built backbone maps ``(2, 3, H, W)`` to finite logits ``(2, num_classes)``; eval mode, no gradient, so
    its weights and BatchNorm statistics stay as they were."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise s.fail(f"the factory returned {type(model).__name__}; a backbone factory must return a "
                     f"torch.nn.Module mapping (N, 3, H, W) to logits (N, num_classes)")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    h, w = int(image_size[0]), int(image_size[1])
    images = torch.linspace(-1.0, 1.0, 2 * 3 * h * w).reshape(2, 3, h, w).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = s.call(f"model(images (2, 3, {h}, {w}))", model, images)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        raise s.fail(f"model(images (2, 3, {h}, {w})) gave {_shape(out)}; a backbone built with "
                     f"num_classes={num_classes} must give logits (2, {num_classes})")
    if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
        raise s.fail(f"model(images (2, 3, {h}, {w})) gave non-finite or non-float logits ({out.dtype})")


def check_backbone(s: Subject, thorough: bool = True, num_classes: int = 3,
                   image_size: Sequence[int] = (32, 32)) -> None:
    check_backbone_model(s, s.build(num_classes), num_classes, image_size)


def check_loss_module(s: Subject, loss_fn: Any, num_classes: int, targets: Any = None, soft: bool = True,
                      thorough: bool = False, grad: bool = True) -> None:
    """``loss(logits (N, C), targets)`` is a finite float scalar that carries a gradient, for int targets
    ``(N,)`` (or the given ``targets``) and, with ``soft``, soft targets ``(N, C)``. ``grad=False`` (a member
    being built) passes logits without a gradient: a call the loss cannot mistake for a training step."""
    import torch

    if not isinstance(loss_fn, torch.nn.Module):
        raise s.fail(f"the factory returned {type(loss_fn).__name__}; a loss factory must return a torch.nn.Module "
                     f"called as loss(logits, targets) -> scalar tensor")
    n = 8
    device = next((t.device for t in list(loss_fn.parameters()) + list(loss_fn.buffers())), torch.device("cpu"))
    ints = torch.arange(n, device=device) % num_classes if targets is None else targets
    cases = [("int targets (N,)", ints)]
    if soft:
        one_hot = torch.nn.functional.one_hot(ints, num_classes).float()
        cases.append(("soft targets (N, C)", one_hot * 0.8 + 0.2 / num_classes))
    for label, target in cases:
        logits = torch.randn(n, num_classes, generator=_generator()).to(device).requires_grad_(grad)
        value = s.call(f"loss(logits ({n}, {num_classes}), {label})", loss_fn, logits, target)
        where = f"loss(logits ({n}, {num_classes}), {label})"
        if not _is_scalar_tensor(value):
            raise s.fail(f"{where} gave {_shape(value)}" + (f" {value.dtype}" if hasattr(value, "dtype") else "")
                         + "; a loss must return a scalar float tensor (reduce over the batch)")
        if not bool(torch.isfinite(value)):
            raise s.fail(f"{where} gave {float(value)}; a loss must be finite")
        if grad and value.grad_fn is None:
            raise s.fail(f"{where} carries no gradient (detached or computed outside autograd); training "
                         f"needs loss.backward()")
        if thorough:
            s.call(f"{where}.backward()", value.backward)
            if logits.grad is None or not bool(torch.isfinite(logits.grad).all()):
                raise s.fail(f"{where}.backward() gave no finite gradient for the logits")


def tiny_model(num_classes: int = 3):
    import torch
    with preserved_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(4, num_classes))


def tiny_batch(n: int = 8, num_classes: int = 3, size: tuple[int, int] = (16, 12)):
    import torch
    return torch.randn(n, 3, *size, generator=_generator()), torch.arange(n) % num_classes


def one_step(model, loss_fn, optimizer, images, targets) -> float:
    loss = loss_fn(model(images), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def check_loss(s: Subject, thorough: bool = True, num_classes: int = 3) -> None:
    import math

    import torch

    loss_fn = s.build()
    check_loss_module(s, loss_fn, num_classes, thorough=thorough)
    if thorough:   # one SGD step on a tiny model must move its weights
        model = tiny_model(num_classes)
        images, targets = tiny_batch(num_classes=num_classes)
        before = [p.detach().clone() for p in model.parameters()]
        value = s.call("one SGD step on a tiny model", one_step, model, loss_fn,
                       torch.optim.SGD(model.parameters(), lr=0.1), images, targets)
        if not math.isfinite(value):
            raise s.fail(f"one SGD step on a tiny model gave the loss {value}; a loss must be finite")
        if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
            raise s.fail("one SGD step with this loss left a tiny model's weights unchanged: it gives no gradient")


def check_optimizer(s: Subject, thorough: bool = True) -> None:
    import torch

    model = tiny_model()
    optimizer = s.build(model.parameters())
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise s.fail(f"the factory returned {type(optimizer).__name__}; an optimizer factory must return a "
                     f"torch.optim.Optimizer over the parameters it is given")
    before = [p.detach().clone() for p in model.parameters()]
    images, targets = tiny_batch()
    for _ in range(2):  # ADOPT only initialises its second moment on the first step
        s.call("optimizer.step()", one_step, model, torch.nn.CrossEntropyLoss(), optimizer, images, targets)
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        raise s.fail("two optimizer steps left a tiny model's weights unchanged")
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise s.fail("two optimizer steps made a tiny model's weights non-finite")


SCHEDULE_EPOCHS, SCHEDULE_STEPS, SCHEDULE_LR = 6, 4, 0.1


def lr_trajectory(sched, optimizer, model, epochs: int, steps: int, start: tuple[int, int] = (0, 0)) -> list[float]:
    """The lr of every training step from ``start`` (epoch, step) to the end, stepping as the trainer does."""
    import torch
    images, targets = tiny_batch()
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


def fresh_schedule(s: Subject):
    import torch
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=SCHEDULE_LR)
    return model, optimizer, s.build(optimizer, SCHEDULE_EPOCHS, SCHEDULE_STEPS)


def check_scheduler(s: Subject, thorough: bool = True) -> list[float]:
    """ScheduledLR(scheduler, interval): finite learning rates over 6 epochs x 4 steps, and a scheduler restored
    from its ``state_dict`` after 2 epochs continues with the same rates (what a resumed member relies on).
    Returns the learning rates of the uninterrupted run."""
    import math

    model, optimizer, sched = fresh_schedule(s)
    inner = getattr(sched, "scheduler", None)
    if getattr(sched, "interval", None) not in ("epoch", "step") or inner is None:
        raise s.fail(f"the factory returned {type(sched).__name__}; a scheduler factory must return "
                     f"ScheduledLR(scheduler, interval) with interval 'epoch' or 'step'")
    for attr in ("step", "state_dict", "load_state_dict"):
        s.need(inner, attr, "a scheduler must step and save / restore its state (resume)")
    lrs = s.call("stepping it", lr_trajectory, sched, optimizer, model, SCHEDULE_EPOCHS, SCHEDULE_STEPS)
    if not all(math.isfinite(lr) and lr >= 0 for lr in lrs):
        raise s.fail(f"it set a negative or non-finite learning rate: {lrs}")
    model, optimizer, sched = fresh_schedule(s)
    lr_trajectory(sched, optimizer, model, 2, SCHEDULE_STEPS)
    model2, optimizer2, sched2 = fresh_schedule(s)
    optimizer2.load_state_dict(optimizer.state_dict())
    s.call("scheduler.load_state_dict(state_dict())", sched2.scheduler.load_state_dict, sched.scheduler.state_dict())
    tail = lr_trajectory(sched2, optimizer2, model2, SCHEDULE_EPOCHS, SCHEDULE_STEPS, start=(2, 0))
    expected = lrs[2 * SCHEDULE_STEPS:]
    if len(tail) != len(expected) or any(abs(a - b) > max(1e-12 * abs(b), 1e-12) for a, b in zip(tail, expected)):
        raise s.fail("restored from its state_dict after 2 epochs it continues with other learning rates than "
                     "without the restart; a resumed member would train differently")
    return lrs


def check_augmentation(s: Subject, thorough: bool = True, image: Any = None,
                       image_size: Sequence[int] = (32, 24), transform: Any = None,
                       dtypes: tuple[str, ...] = ("uint8", "float32")) -> Any:
    """Through ``albumentations.Compose`` (as the loader uses it) an ``(H, W, 3)`` uint8 RGB image becomes an
    ``(H', W', 3)`` RGB image of ``dtypes`` (uint8; float32 from a normalising transform such as ``Normalize``).
    Returns the last output (validate chains a member's augmentations)."""
    import albumentations as A
    import numpy as np

    transform = s.build() if transform is None else transform
    try:
        compose = A.Compose([transform], seed=0)
    except Exception as exc:  # noqa: BLE001
        raise s.fail(f"albumentations.Compose refuses the built object ({type(transform).__name__}: "
                     f"{raised(exc)}); an augmentation factory must return an albumentations transform") from exc
    if image is None:
        h, w = int(image_size[0]), int(image_size[1])
        image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = image
    for _ in range(8 if thorough else 2):   # random transforms (p < 1) must be seen applied
        result = s.call(f"applying it to an image {tuple(image.shape)} uint8", compose, image=image)
        out = result.get("image") if isinstance(result, Mapping) else None
        if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[2] != 3 or min(out.shape[:2]) < 1:
            raise s.fail(f"on an image {tuple(image.shape)} uint8 it returned {_shape(out)}; an augmentation must "
                         f"return an HWC RGB image (H, W, 3)")
        if out.dtype.name not in dtypes:
            raise s.fail(f"on an image {tuple(image.shape)} uint8 it returned dtype {out.dtype}; an augmentation "
                         f"must return {' or '.join(dtypes)} (the image types albumentations' resize and normalise "
                         f"after it take{'; augment_on: device needs uint8' if dtypes == ('uint8',) else ''})")
    return out


def check_batch_augmentation(s: Subject, thorough: bool = True, num_classes: int = 3) -> None:
    import torch

    augment = s.build(num_classes)
    if not callable(augment):
        raise s.fail(f"the built object ({type(augment).__name__}) is not callable; a batch augmentation is "
                     f"called as augment(images, targets) -> (images, soft_targets)")
    images, targets = tiny_batch(num_classes=num_classes)
    kept = images.clone()
    with preserved_rng():
        torch.manual_seed(0)
        for _ in range(5):  # stateful ones (class_cutmix) need a batch with the class first
            out = s.call("augment(images (8, 3, 16, 12), targets (8,))", augment, images, targets)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise s.fail(f"augment(images, targets) returned {type(out).__name__}; it must return a pair "
                     f"(images, soft_targets)")
    out_images, soft = out
    if not isinstance(out_images, torch.Tensor) or out_images.shape != images.shape:
        raise s.fail(f"augment(images (8, 3, 16, 12), targets) returned images of {_shape(out_images)}; the "
                     f"images must keep their shape")
    if not isinstance(soft, torch.Tensor) or tuple(soft.shape) != (len(images), num_classes) \
            or not soft.is_floating_point():
        raise s.fail(f"augment(images, targets) returned soft targets of {_shape(soft)}; they must be float "
                     f"({len(images)}, {num_classes})")
    if not bool(torch.isfinite(soft).all()) or not torch.allclose(soft.sum(1), torch.ones(len(images)), atol=1e-5):
        raise s.fail("augment(images, targets) returned soft targets whose rows do not sum to 1")
    if thorough and not torch.equal(images, kept):
        raise s.fail("augment(images, targets) changed its input images in place")
    if thorough:   # the pair trains a tiny model one step (soft-target cross-entropy)
        import math

        model = tiny_model(num_classes)

        def soft_ce(logits, target):
            return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()

        value = s.call("one SGD step on its output", one_step, model, soft_ce,
                       torch.optim.SGD(model.parameters(), lr=0.1), out_images, soft)
        if not math.isfinite(value):
            raise s.fail(f"one SGD step on its (images, soft_targets) gave the loss {value}")


def tta_views(s: Subject, tta: Any) -> list[Callable]:
    views = getattr(tta, "views", None)
    views = [tta] if views is None else list(views)
    if not views or not all(callable(v) for v in views):
        raise s.fail(f"the built object ({type(tta).__name__}) is neither callable as tta(images) -> images nor "
                     f"has views (a list of such callables)")
    return views


def check_tta(s: Subject, thorough: bool = True) -> None:
    import torch

    views = tta_views(s, s.build())
    images = torch.randn(8, 3, 16, 12, generator=_generator())
    for view in views:
        kept = images.clone()
        out = s.call(f"view {view!r} on images (8, 3, 16, 12)", view, images)
        if not isinstance(out, torch.Tensor) or out.shape != images.shape:
            raise s.fail(f"view {view!r} turned images (8, 3, 16, 12) into {_shape(out)}; a TTA view must keep "
                         f"the batch's shape")
        if not torch.equal(images, kept):
            raise s.fail(f"view {view!r} changed its input in place; return a new tensor")
        if thorough and torch.equal(out, images):
            raise s.fail(f"view {view!r} returned the batch unchanged: it adds no view")


def check_device_augmentation(s: Subject, thorough: bool = True) -> None:
    import torch

    module = s.build()
    if not callable(module):
        raise s.fail(f"the built object ({type(module).__name__}) is not callable; a device augmentation maps a "
                     f"float batch (N, C, H, W) in 0..1 to one of the same shape")
    images = torch.rand(4, 3, 16, 12, generator=_generator())
    with preserved_rng():
        torch.manual_seed(0)
        out = s.call("augment(images (4, 3, 16, 12) in 0..1)", module, images)
    if not isinstance(out, torch.Tensor) or out.shape != images.shape or out.dtype != images.dtype:
        raise s.fail(f"on a float32 batch (4, 3, 16, 12) it returned {_shape(out)} "
                     f"{getattr(out, 'dtype', '')}; a device augmentation keeps the batch's shape and dtype")
    if not bool(torch.isfinite(out).all()):
        raise s.fail("on a batch in 0..1 it returned non-finite values")


UNPREDICTED_EVERY = 10   # with ``nan``, every 10th person is in no member's fold: images no member predicts


def voter_data(n_members: int = 4, n: int = 400, n_classes: int = 5, seed: int = 0, nan: bool = True):
    """(M, N, C) probabilities, targets, groups, persons. With ``nan`` they are out-of-fold: NaN outside each
    member's fold, and the people of every ``UNPREDICTED_EVERY``-th are in no fold (NaN for every member)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n) if nan else np.arange(n) % n_classes
    persons = np.arange(n) // 4
    fold = np.where(persons % UNPREDICTED_EVERY == UNPREDICTED_EVERY - 1, -1, persons % 2)
    probs = np.full((n_members, n, n_classes), np.nan)
    for m in range(n_members):
        z = rng.normal(size=(n, n_classes))
        z[np.arange(n), y] += 1.5
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        rows = fold == m % 2 if nan else np.ones(n, dtype=bool)
        probs[m, rows] = p[rows]
    return probs, y, [f"g{m // 2}" for m in range(n_members)], persons


def check_voter(s: Subject, thorough: bool = True) -> None:
    """``fit(probs, targets[, groups, persons]) -> self`` and ``voter(probs) -> (N, C)``: finite rows summing
    to 1 on every image some member predicted, NaN rows on the images no member predicted (the engine masks
    those rows itself too, so a run's figures never count them). Thorough: on NaN-padded out-of-fold
    probabilities (with images no member predicted) and on NaN-free eval ones, plus ``crossfit_oof``."""
    import numpy as np

    voter = s.build()
    fit = s.need(voter, "fit", "a voter must have fit(probs, targets) -> self")
    if not callable(voter):
        raise s.fail(f"the built object ({type(voter).__name__}) has no __call__; a voter must be callable as "
                     f"voter(probs) -> (N, C)")
    probs, y, groups, persons = voter_data() if thorough else voter_data(4, 24, 3, nan=False)
    try:
        accepted = inspect.signature(fit).parameters
    except (TypeError, ValueError):
        accepted = {}
    extra = {k: v for k, v in (("groups", groups), ("persons", persons)) if k in accepted}
    m, n, c = probs.shape
    fitted = s.call(f"fit(probs ({m}, {n}, {c}), targets ({n},))", fit, probs, y, **extra)
    if fitted is not voter:
        raise s.fail(f"fit(probs, targets) returned {type(fitted).__name__}, not the voter itself; fit must "
                     f"return self")
    cases = [("probs", probs)] + ([("NaN-free probs", np.nan_to_num(probs, nan=0.2))] if thorough else [])
    for label, data in cases:
        out = s.call(f"voter({label} ({m}, {n}, {c}))", voter, data)
        out = np.asarray(out, dtype=np.float64) if out is not None else out
        if out is None or out.shape != (n, c):
            raise s.fail(f"voter({label} ({m}, {n}, {c})) gave {_shape(out)}; a voter must give ({n}, {c})")
        predicted = ~np.isnan(data).any(axis=2).all(axis=0)    # images some member predicted
        if not np.isfinite(out[predicted]).all():
            raise s.fail(f"voter({label} ({m}, {n}, {c})) gave non-finite rows; every image a member predicts "
                         f"must get finite probabilities")
        if label == "probs" and not np.allclose(out[predicted].sum(axis=1), 1.0, atol=1e-6):
            raise s.fail(f"voter(probs ({m}, {n}, {c})) gave rows that do not sum to 1")
        filled = int((~np.isnan(out[~predicted]).all(axis=1)).sum())
        if filled:
            raise s.fail(f"voter({label} ({m}, {n}, {c})) gave values on {filled} of the {int((~predicted).sum())} "
                         f"image(s) no member predicted; leave those rows NaN (a vote of nobody), as the "
                         f"engine does")
    crossfit = getattr(voter, "crossfit_oof", None)
    if crossfit is not None and np.shape(crossfit) != (n, c):
        raise s.fail(f"its crossfit_oof has shape {np.shape(crossfit)}; it must be the out-of-fold votes ({n}, {c})")


def decision_data(n: int = 900, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 18
    z = rng.normal(size=(n, 18))
    z[np.arange(n), y] += 2.0
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return np.log(np.clip(p, 1e-7, 1.0)), y   # as ensemble.decision.log_probs


def check_decision(s: Subject, thorough: bool = True) -> None:
    """``fit(log_probs (N, 18), targets) -> self``, ``rule(log_probs) -> (N, 18)`` finite scores, ``fitted()`` JSON
    that ``load`` restores to the same decisions, and the attributes ``force``, ``match_confidence``, ``cv_folds``."""
    import numpy as np

    rule = s.build()
    for attr in ("force", "match_confidence", "cv_folds"):
        if not hasattr(rule, attr):
            raise s.fail(f"the built object has no attribute {attr!r}; a decision takes and keeps the parameters "
                         f"force, match_confidence and cv_folds")
    s.need(rule, "fit", "a decision must have fit(log_probs, targets) -> self")
    s.need(rule, "fitted", "a decision must have fitted() -> dict (saved in decision.json)")
    s.need(rule, "load", "a decision must have load(dict) -> self")
    if not callable(rule):
        raise s.fail("the built object has no __call__; a decision must be callable as rule(log_probs) -> (N, 18)")
    log_p, y = decision_data(900 if thorough else 180)
    k = len(y) * 2 // 3
    if s.call("fit(log_probs, targets)", rule.fit, log_p[:k], y[:k]) is not rule:
        raise s.fail("fit(log_probs, targets) did not return the decision itself; fit must return self")
    scores = np.asarray(s.call(f"rule(log_probs ({len(y) - k}, 18))", rule, log_p[k:]))
    if scores.shape != (len(y) - k, 18) or not np.isfinite(scores).all():
        raise s.fail(f"rule(log_probs ({len(y) - k}, 18)) gave {_shape(scores)}; it must give finite scores "
                     f"({len(y) - k}, 18)")
    fitted = s.call("fitted()", rule.fitted)
    try:
        fitted = json.loads(json.dumps(fitted))
    except (TypeError, ValueError) as exc:
        raise s.fail(f"fitted() gave something JSON cannot hold ({raised(exc)}); it is saved in decision.json") \
            from exc
    again = s.call("load(fitted())", s.build().load, fitted)
    if again is None or not (np.asarray(again(log_p[k:])).argmax(axis=1) == scores.argmax(axis=1)).all():
        raise s.fail("a fresh decision after load(fitted()) decides differently; load must restore what fitted() "
                     "saved and return self")


def label_samples(n: int = 36):
    """A tiny labelled sample table with every column a task may read (labels.py)."""
    import numpy as np
    import pandas as pd

    i = np.arange(n)
    ages = np.array([20, 25, 29, 30, 45, 57, 58, 59, 60])
    mask, gender, age = i % 3, (i // 3) % 2, ages[i % len(ages)]
    from ensemble_core.labels import age_to_class, class_id
    return pd.DataFrame({"image_id": [f"p{k // 4}/img{k}.jpg" for k in i], "path": [f"/x/p{k // 4}/img{k}.jpg" for k in i],
                         "person": [f"p{k // 4}" for k in i], "mask": mask, "gender": gender, "age": age,
                         "label18": class_id(mask, gender, age_to_class(age))})


def check_label_transform(s: Subject, thorough: bool = True, transform: Any = None) -> Any:
    import numpy as np

    lt = s.build() if transform is None else transform
    n_classes = getattr(lt, "num_classes", None)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise s.fail(f"its num_classes is {n_classes!r}; a label transform says how many training classes it makes")
    s.need(lt, "encode", "a label transform must have encode(age, gender) -> class ids")
    s.need(lt, "to_age3", "a label transform must have to_age3(probs) -> (N, 3)")
    samples = label_samples()
    codes = np.asarray(s.call("encode(age, gender)", lt.encode, samples["age"].to_numpy(), samples["gender"].to_numpy()))
    if codes.shape != (len(samples),) or not np.issubdtype(codes.dtype, np.integer) \
            or codes.min() < 0 or codes.max() >= n_classes:
        raise s.fail(f"encode(age, gender) of {len(samples)} samples gave {_shape(codes)} {codes.dtype}; it must "
                     f"give integer ids in [0, {n_classes})")
    probs = np.full((len(samples), int(n_classes)), 1.0 / n_classes)
    age3 = np.asarray(s.call(f"to_age3(probs ({len(samples)}, {n_classes}))", lt.to_age3, probs))
    if age3.shape != (len(samples), 3) or not np.isfinite(age3).all() or not np.allclose(age3.sum(1), 1, atol=1e-6):
        raise s.fail(f"to_age3(probs ({len(samples)}, {n_classes})) gave {_shape(age3)}; it must give rows over the "
                     f"3 age classes that sum to 1")
    return lt


def check_task(s: Subject, thorough: bool = True, label_transform: Any = None) -> Any:
    """Heads, rows, targets, truth, probs over the original classes and their 18-class log factor."""
    import numpy as np

    from ensemble_core.labels import FACTORS, N_CLASSES
    task = s.build(**({"label_transform": label_transform} if label_transform is not None else {}))
    heads = s.call("task.heads", lambda: list(task.heads))
    if not heads or not all(isinstance(getattr(h, "num_classes", None), int) and h.num_classes >= 1 for h in heads):
        raise s.fail(f"its heads are {heads!r}; a task has at least one head, each with num_classes >= 1")
    n_out = s.call("task.num_outputs", lambda: task.num_outputs)
    n_orig = s.call("task.num_original_classes", lambda: task.num_original_classes)
    if n_out != sum(h.num_classes for h in heads) or not isinstance(n_orig, int) or n_orig < 1:
        raise s.fail(f"num_outputs {n_out!r} / num_original_classes {n_orig!r} do not fit its heads {heads!r}")
    unknown = [f for f in getattr(task, "covers", ()) if f not in FACTORS + ("age",)]
    if unknown:
        raise s.fail(f"it covers unknown factor(s) {unknown}; factors are {', '.join(FACTORS)} (or age)")
    samples = label_samples()
    rows = np.asarray(s.call("rows(samples)", task.rows, samples))
    if rows.shape != (len(samples),) or rows.dtype != bool:
        raise s.fail(f"rows(samples) of {len(samples)} gave {_shape(rows)} {rows.dtype}; it must give a boolean "
                     f"mask ({len(samples)},)")
    picked = samples[rows].reset_index(drop=True)
    n = len(picked)
    if n == 0:
        raise s.fail(f"rows(samples) kept none of {len(samples)} samples covering every mask, gender and age class")
    targets = np.asarray(s.call("targets(samples)", task.targets, picked))
    want = (n,) if len(heads) == 1 else (n, len(heads))
    if targets.shape != want or not np.issubdtype(targets.dtype, np.integer):
        raise s.fail(f"targets of {n} samples gave {_shape(targets)} {targets.dtype}; a task with {len(heads)} "
                     f"head(s) gives integer targets {want}")
    truth = np.asarray(s.call("truth(samples)", task.truth, picked))
    if truth.shape != (n,) or truth.min() < 0 or truth.max() >= n_orig:
        raise s.fail(f"truth of {n} samples gave {_shape(truth)} outside [0, {n_orig})")
    logits = np.random.default_rng(0).normal(size=(n, n_out))
    probs = np.asarray(s.call(f"probs(logits ({n}, {n_out}))", task.probs, logits))
    if probs.shape != (n, n_orig) or not np.isfinite(probs).all() or not np.allclose(probs.sum(1), 1, atol=1e-5):
        raise s.fail(f"probs(logits ({n}, {n_out})) gave {_shape(probs)}; it must give rows over the "
                     f"{n_orig} original classes that sum to 1")
    log18 = np.asarray(s.call("log18(probs)", task.log18, probs))
    if log18.shape != (n, N_CLASSES) or np.isnan(log18).any():
        raise s.fail(f"log18(probs) gave {_shape(log18)}; it must give ({n}, {N_CLASSES}) log factors")
    return task


def person_table(n: int = 30):
    import numpy as np
    import pandas as pd

    i = np.arange(n)
    return pd.DataFrame({"person": [f"p{k:03d}" for k in i], "gender": i % 2, "age": (i * 7) % 45 + 18})


def check_splitter(s: Subject, thorough: bool = True) -> None:
    """``split(persons, seed)`` gives ``[(train_idx, val_idx), ...]``: integer positions of person rows, both
    sides non-empty and disjoint (a person never on both sides)."""
    import numpy as np

    splitter = s.build()
    s.need(splitter, "split", "a splitter must have split(persons, seed) -> [(train_idx, val_idx), ...]")
    persons = person_table()
    n = len(persons)
    splits = s.call(f"split(persons ({n} rows), seed=0)", splitter.split, persons, 0)
    try:
        splits = [(np.asarray(tr), np.asarray(va)) for tr, va in splits]
    except (TypeError, ValueError) as exc:
        raise s.fail(f"split(persons, seed) gave {type(splits).__name__}, not a list of (train_idx, val_idx) pairs") \
            from exc
    if not splits:
        raise s.fail("split(persons, seed) gave no split")
    for k, (tr, va) in enumerate(splits):
        for side, idx in (("train", tr), ("validation", va)):
            if idx.ndim != 1 or not len(idx) or not np.issubdtype(idx.dtype, np.integer) \
                    or idx.min() < 0 or idx.max() >= n:
                raise s.fail(f"split {k}: its {side} side is {_shape(idx)} {idx.dtype}; it must be a non-empty "
                             f"array of person row positions in [0, {n})")
        if np.intersect1d(tr, va).size:
            raise s.fail(f"split {k} puts person row(s) {np.intersect1d(tr, va)[:5].tolist()} on both sides; "
                         f"splits are person-level and disjoint")


@dataclass(frozen=True)
class ProbeJob:
    """A finished member job with :class:`ensemble_core.executors.MemberJob`'s interface (``is_done()`` is
    true): what :func:`check_executor` gives an executor unless told how to make real jobs."""

    member: dict
    data_dir: str
    train_rows: Any
    val_rows: Any
    run_dir: str
    exclude: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)

    @property
    def run_name(self) -> str:
        return Path(self.run_dir).name

    def is_done(self) -> bool:
        return True


def probe_job(run_dir: Path) -> ProbeJob:
    import numpy as np
    return ProbeJob(member={}, data_dir=str(run_dir.parent / "no-data"), train_rows=np.arange(0),
                    val_rows=np.arange(0), run_dir=str(run_dir))


def check_executor(s: Subject, thorough: bool = True, make_job: Callable[[Path], Any] | None = None) -> None:
    """Given N finished jobs, ``run(jobs)`` returns exactly N results, one per job in job order (same
    ``run_name`` / ``run_dir``), each ``"skipped"``: an executor must skip members already done (resume),
    so this trains nothing. ``make_job(run_dir)`` makes a finished job (default :class:`ProbeJob`)."""
    executor = s.build()
    run = s.need(executor, "run", "an executor must have run(jobs) -> list of MemberResult, one per job")
    with tempfile.TemporaryDirectory(prefix="ensemble-contract-") as tmp:
        members = Path(tmp) / "members"
        jobs = []
        for k in range(N_EXECUTOR_JOBS):
            run_dir = members / f"contract-member-{k}"
            run_dir.mkdir(parents=True)
            jobs.append((make_job or probe_job)(run_dir))
        results = s.call(f"run({len(jobs)} finished jobs)", run, list(jobs))
        try:
            results = list(results)
        except TypeError as exc:
            raise s.fail(f"run(jobs) returned {type(results).__name__}; it must return a list of MemberResult") \
                from exc
        if len(results) != len(jobs):
            raise s.fail(f"run({len(jobs)} finished jobs) returned {len(results)} result(s); an executor must "
                         f"return exactly one MemberResult per job, in job order")
        for k, (job, result) in enumerate(zip(jobs, results)):
            got = (getattr(result, "run_name", None), getattr(result, "run_dir", None))
            if got != (job.run_name, job.run_dir):
                raise s.fail(f"result {k} of run(jobs) is for {got[0]!r}, not job {k} ({job.run_name!r}); an executor "
                             f"returns one result per job, in job order")
            status = getattr(result, "status", None)
            if status != "skipped":
                raise s.fail(f"result {k} of run(jobs) has status {status!r} for a finished job (is_done() true); an "
                             f"executor must report it 'skipped' without training it (resume)")


def check_label_space(s: Subject, thorough: bool = True) -> Any:
    """``factory(**params)`` -> a label space: factors, ``n_classes`` final classes with one name each, and
    ``decode`` / ``encode`` inverse to each other on every class id."""
    import numpy as np

    space = s.build()
    for attr in ("factor_names", "n_classes"):
        if not hasattr(space, attr):
            raise s.fail(f"the built object ({type(space).__name__}) has no {attr}; a label space declares its "
                         f"factors and its number of final classes")
    names = s.call("class_names()", s.need(space, "class_names", "a label space names its final classes"))
    n = int(space.n_classes)
    if len(names) != n or len(set(names)) != n:
        raise s.fail(f"class_names() gave {len(names)} name(s) ({len(set(names))} distinct) for {n} classes; "
                     f"every final class needs its own name")
    ids = np.arange(n)
    codes = s.call("decode(ids)", s.need(space, "decode", "a label space maps class ids to factor codes"), ids)
    back = s.call("encode(**decode(ids))", s.need(space, "encode", "a label space maps factor codes to class ids"),
                  **codes)
    if not np.array_equal(np.asarray(back), ids):
        raise s.fail("encode(**decode(ids)) does not give the ids back; the two must be inverse")
    return space


def check_dataset(s: Subject, thorough: bool = True) -> Any:
    """``factory(**params)`` -> a data layout with ``load(data_dir, exclude)`` and ``check(data_dir)``
    (reading the files is left to the layout's own tests: a contract check has no data to read)."""
    layout = s.build()
    s.need(layout, "load", "a data layout reads a data folder: load(data_dir, exclude=()) -> Dataset")
    s.need(layout, "check", "a data layout checks a data folder before a run: check(data_dir) -> report")
    if not isinstance(getattr(layout, "submission_columns", None), (tuple, list)):
        raise s.fail("the built layout has no submission_columns (the header of its submission file)")
    return layout


WEIGHTS_RECORD_KEYS = ("source", "file", "sha256", "loaded", "left_out", "input_config")


def check_weights_record(s: Subject, record: Any, model: Any = None) -> None:
    """What a weight source's ``load`` returned (and a member keeps in ``config.json``): a JSON-able dict with
    every key of :data:`WEIGHTS_RECORD_KEYS`, ``loaded`` > 0 tensors (at most the model's), and ``input_config``
    whose ``mean`` / ``std`` give one number per input channel (every std above 0): a wrong normalisation would
    make every figure of the member silently worse."""
    if not isinstance(record, Mapping):
        raise s.fail(f"load(model, model_name) returned {type(record).__name__}; it must return the record dict "
                     f"({', '.join(WEIGHTS_RECORD_KEYS)})")
    missing = [k for k in WEIGHTS_RECORD_KEYS if k not in record]
    if missing:
        raise s.fail(f"load(model, model_name)'s record lacks {', '.join(missing)}")
    try:
        json.dumps(record)
    except (TypeError, ValueError) as exc:
        raise s.fail(f"load(model, model_name)'s record is not JSON-able ({exc}); it goes into config.json") from exc
    n_tensors = len(model.state_dict()) if model is not None else None
    loaded = record["loaded"]
    if not isinstance(loaded, int) or isinstance(loaded, bool) or loaded <= 0 or (n_tensors and loaded > n_tensors):
        raise s.fail(f"load(model, model_name)'s record says loaded={loaded!r}; a source that loads nothing must "
                     f"raise instead (never random weights in silence)")
    cfg = record["input_config"]
    channels = _input_channels(model)
    if not isinstance(cfg, Mapping):
        raise s.fail("load(model, model_name)'s record has no input_config {mean, std, interpolation}")
    for key in ("mean", "std"):
        values = cfg.get(key)
        ok = (isinstance(values, (list, tuple)) and len(values) == (channels or len(values)) and values
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
              and (key == "mean" or all(v > 0 for v in values)))
        if not ok:
            raise s.fail(f"load(model, model_name)'s input_config {key} is {values!r}; it must give one number per "
                         f"input channel{f' ({channels})' if channels else ''}" + (", each above 0" if key == "std" else ""))


def _input_channels(model: Any) -> int | None:
    if model is None:
        return None
    for p in model.parameters():
        if p.dim() == 4:
            return int(p.shape[1])
    return None


def check_weights(s: Subject, thorough: bool = True, model_name: str | None = None) -> tuple[Any, list[str]]:
    """``factory(**params)`` -> a weight source: ``problems(model_name)`` gives a list of strings (empty when it
    can deliver) and ``load(model, model_name)`` is callable. With ``thorough`` and a ``model_name`` the source
    can deliver (a timm architecture), the weights are loaded into a fresh 3-class model of it and the record
    checked (:func:`check_weights_record`). Returns ``(source, problems)``."""
    source = s.build()
    problems_fn = s.need(source, "problems", "a weight source says why it cannot deliver: problems(model_name) -> "
                                             "list[str]")
    load = s.need(source, "load", "a weight source loads weights: load(model, model_name) -> record dict")
    name = model_name or "resnet18"
    problems = s.call(f"problems({name!r})", problems_fn, name)
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise s.fail(f"problems({name!r}) returned {problems!r}; it must return a list of strings (empty when the "
                     f"source can deliver)")
    if thorough and model_name and not problems:
        import timm

        model = timm.create_model(model_name, pretrained=False, num_classes=3)
        check_weights_record(s, s.call(f"load(model, {model_name!r})", load, model, model_name), model)
    return source, problems


CHECKS: dict[str, Callable[..., Any]] = {
    "label_space": check_label_space, "dataset": check_dataset,
    "backbone": check_backbone, "augmentation": check_augmentation,
    "batch_augmentation": check_batch_augmentation, "loss": check_loss, "optimizer": check_optimizer,
    "scheduler": check_scheduler, "voter": check_voter, "label_transform": check_label_transform,
    "task": check_task, "tta": check_tta, "device_augmentation": check_device_augmentation,
    "decision": check_decision, "splitter": check_splitter, "executor": check_executor, "weights": check_weights,
}
assert set(CHECKS) == set(KINDS), "every kind needs a contract check"


def check(kind: str, spec: ComponentSpec, params: Mapping[str, Any] | None = None, thorough: bool = True,
          registry: Any = None, **context: Any) -> Any:
    """Build ``spec`` with ``params`` and run its kind's check; raise :class:`ComponentContractError`.

    ``context`` goes to the check: ``num_classes`` (backbone, loss, batch_augmentation), ``image_size``
    (backbone, augmentation), ``make_job`` (executor), ``label_transform`` (task)."""
    if kind not in CHECKS:
        raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    subject = Subject(kind, spec, dict(params or {}), registry)
    with preserved_rng():
        return CHECKS[kind](subject, thorough=thorough, **context)


# ---------------------------------------------------------------- recipe validation and member build
CACHED_KINDS = ("splitter", "voter", "decision", "executor", "loss", "batch_augmentation", "tta")  # the rest
# return what the next check needs (a task's heads, the image after an augmentation) and are cheap anyway


def _key(kind: str, spec: ComponentSpec, params: Mapping[str, Any], context: Mapping[str, Any]) -> tuple | None:
    try:
        return kind, spec.name, json.dumps(params, sort_keys=True), json.dumps(context, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None


def recipe_problems(recipe: Any, registry: Any) -> list[str]:
    """The cheap contract checks on every non-model component a (field-valid) recipe names, with its
    parameters: ``["voter: voter 'median' (plugin ...): the built object has no __call__; ...", ...]``."""
    problems: list[str] = []
    passed: set[tuple] = set()   # the same component and parameters in several task entries: checked once

    def run(path: str, kind: str, ref: Any, **context: Any) -> Any:
        ref = normalize_ref(ref)
        spec = registry.get(kind, ref["name"])
        key = _key(kind, spec, ref["params"], context) if kind in CACHED_KINDS else None
        if key is not None and key in passed:
            return None
        try:
            out = check(kind, spec, ref["params"], thorough=False, registry=registry, **context)
        except ComponentContractError as exc:
            problems.append(f"{path}: {exc}")
            return None
        if key is not None:
            passed.add(key)
        return out

    run("split", "splitter", recipe.split)
    run("voter", "voter", recipe.voter)
    run("decision", "decision", recipe.decision)
    run("executor", "executor", recipe.executor)
    for i in range(len(recipe.tasks)):
        fields = recipe.member_fields(i)
        path = f"tasks[{i}]"
        transform = None
        if fields.get("label_transform") is not None:
            transform = run(f"{path}.label_transform", "label_transform", fields["label_transform"])
            if transform is None:
                continue
        task = run(f"{path}.task", "task", fields["task"], label_transform=transform)
        if task is not None:
            heads = list(task.heads)
            head_losses = dict(getattr(task, "head_losses", None) or {}) if len(heads) > 1 else {}
            for h in heads:
                loss = head_losses.get(h.name, fields.get("loss"))
                where = f"{path}.task.params.head_losses.{h.name}" if h.name in head_losses else f"{path}.loss"
                if loss is not None:
                    run(where, "loss", loss, num_classes=h.num_classes)
            if fields.get("batch_augmentation") is not None and len(heads) == 1:
                run(f"{path}.batch_augmentation", "batch_augmentation", fields["batch_augmentation"],
                    num_classes=task.num_outputs)
        size = fields.get("load_size") or PHOTO_SIZE
        image = None
        for key in ("preprocess", "augmentations"):
            for j, item in enumerate(fields.get(key) or []):
                out = run(f"{path}.{key}[{j}]", "augmentation", item, image=image, image_size=tuple(size),
                          dtypes=("uint8",) if fields.get("augment_on") == "device" else ("uint8", "float32"))
                image = out if out is not None else image
        for j, item in enumerate(fields.get("tta") or []):
            run(f"{path}.tta[{j}]", "tta", item)
    return list(dict.fromkeys(problems))


def check_member(member: Any, task: Any, model: Any, loss_fn: Any, registry: Any) -> None:
    """Before a member's first epoch: its built backbone maps a tiny batch at the member's image size to logits
    ``(2, task.num_outputs)``, and its built loss gives a finite scalar on such logits (per head for a multi-head
    task; the logits carry no gradient, so the call is no training step). Raises :class:`ComponentContractError` naming the component and its plugin."""
    import torch

    with preserved_rng():
        backbone = normalize_ref(member.backbone)
        subject = Subject("backbone", registry.get("backbone", backbone["name"]), backbone["params"], registry)
        check_backbone_model(subject, model, int(task.num_outputs), tuple(member.image_size))
        record = getattr(model, WEIGHTS_RECORD_ATTR, None)
        if record is not None:   # what the weight source loaded decides the member's input normalisation
            check_weights_record(subject, record, model)
        heads = list(task.heads)
        loss_ref = normalize_ref(member.loss)
        if len(heads) == 1:
            check_loss_module(Subject("loss", registry.get("loss", loss_ref["name"]), loss_ref["params"], registry), loss_fn,
                              heads[0].num_classes, soft=member.batch_augmentation is not None, grad=False)
            return
        head_losses = dict(getattr(task, "head_losses", None) or {})
        parts = list(getattr(loss_fn, "losses", []))
        if len(parts) != len(heads):
            return   # not the engine's per-head sum: nothing more to attribute
        device = next(model.parameters(), torch.zeros(())).device
        for h, part in zip(heads, parts):
            ref = normalize_ref(head_losses.get(h.name, member.loss))
            targets = torch.arange(8, device=device) % h.num_classes
            check_loss_module(Subject("loss", registry.get("loss", ref["name"]), ref["params"], registry), part.to(device),
                              h.num_classes, targets=targets, soft=False, grad=False)
