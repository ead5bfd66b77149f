"""Hook specifications: the whole contract between ensemble_core and its plugins.

Every component kind has one ``ensemble_register_<kind>s()`` hook. A plugin
implements any of them and returns a list of
:class:`ensemble_core.registry.ComponentSpec`. Built-in plugins
(``ensemble_core_plugins``) use exactly these hooks; third-party packages
expose a module through the ``ensemble_core`` entry point group.

The factory of each spec is called with the component's parameters (from the
recipe) and, for some kinds, leading positional arguments that the engine
supplies; those are listed per hook below and are excluded from recipe
parameter binding.

The registry's kinds are these hooks (``registry.KINDS``); what each built component
must do is checked by :mod:`ensemble_core.contracts` (``ensemble_core.testing.check_component``
for plugin authors, ``recipe.validate`` and member building for every run).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from ensemble_core.registry import ComponentSpec

PROJECT = "ensemble_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ensemble_register_backbones() -> list[ComponentSpec]:
    """Backbones. Factory: ``factory(num_classes: int, **params) -> torch.nn.Module``.

    ``params`` usually include ``pretrained`` (bool) and ``pretrained_path``
    (local checkpoint). The module maps an image batch ``(N, 3, H, W)`` to
    logits ``(N, num_classes)``.
    """


@hookspec
def ensemble_register_augmentations() -> list[ComponentSpec]:
    """Per-sample image augmentations. Factory: ``factory(**params) -> albumentations transform``.

    Applied to HWC uint8 RGB numpy images, one sample at a time.
    """


@hookspec
def ensemble_register_batch_augmentations() -> list[ComponentSpec]:
    """Batch augmentations (CutMix, MixUp, ...). Factory: ``factory(num_classes: int, **params)``.

    Returns a callable ``(images, targets) -> (images, soft_targets)`` where
    ``targets`` are int64 class indices ``(N,)`` and ``soft_targets`` are
    float ``(N, num_classes)`` rows summing to 1.
    """


@hookspec
def ensemble_register_losses() -> list[ComponentSpec]:
    """Losses. Factory: ``factory(**params) -> torch.nn.Module``.

    The module is called as ``loss(logits, targets)`` where targets are either
    int64 class indices ``(N,)`` or soft targets ``(N, C)``.
    """


@hookspec
def ensemble_register_optimizers() -> list[ComponentSpec]:
    """Optimizers. Factory: ``factory(parameters, **params) -> torch.optim.Optimizer``."""


@hookspec
def ensemble_register_schedulers() -> list[ComponentSpec]:
    """Learning-rate schedulers.

    Factory: ``factory(optimizer, epochs: int, steps_per_epoch: int, **params)
    -> ensemble_core.train.schedule.ScheduledLR`` (a scheduler plus whether it
    steps per ``"epoch"`` or per ``"step"``).
    """


@hookspec
def ensemble_register_voters() -> list[ComponentSpec]:
    """Voters that combine members of one task. Factory: ``factory(**params) -> Voter``.

    A voter has ``fit(probs, targets)`` (``probs``: float array ``(M, N, C)``
    with NaN where a member has no prediction, ``targets``: ``(N,)``) and
    ``__call__(probs) -> (N, C)``. ``fit`` may also accept ``groups`` (one id
    per member; members that differ only in their split share one), which the
    pipeline passes only when the signature has it. See
    :mod:`ensemble_core.ensemble.voting`.
    """


@hookspec
def ensemble_register_label_transforms() -> list[ComponentSpec]:
    """Label transforms (age thresholds, age bins). Factory: ``factory(**params) -> LabelTransform``.

    See :class:`ensemble_core.labels.LabelTransform`: it encodes training
    targets and maps predicted probabilities back to the original classes.
    """


@hookspec
def ensemble_register_tasks() -> list[ComponentSpec]:
    """Tasks (mask, gender, age, all18, multihead, ...). Factory: ``factory(**params) -> Task``.

    See :class:`ensemble_core.labels.Task`: which rows it trains on, its
    targets, and how its probabilities map onto the 18 classes.
    """


@hookspec
def ensemble_register_ttas() -> list[ComponentSpec]:
    """Test-time augmentations. Factory: ``factory(**params) -> callable(images) -> images``, or an
    object whose ``views`` attribute is a list of such callables (several views from one entry).

    Operates on a normalised image batch tensor ``(N, C, H, W)``; the member's
    predictions are averaged over the identity view and each TTA view.
    """


@hookspec
def ensemble_register_executors() -> list[ComponentSpec]:
    """Executors that run the planned members. Factory: ``factory(**params) -> Executor``.

    See :mod:`ensemble_core.executors`.
    """


@hookspec
def ensemble_register_splitters() -> list[ComponentSpec]:
    """Person-level train/validation splitters. Factory: ``factory(**params) -> Splitter``.

    A splitter returns a list of ``(train_index, val_index)`` arrays over the
    rows of the person table, never putting one person on both sides.
    """


@hookspec
def ensemble_register_device_augmentations() -> list[ComponentSpec]:
    """Batched per-sample augmentations that run on the training device (``augment_on: device``).

    Each is named after the augmentation it stands in for and takes the same recipe parameters.
    Factory: ``factory(**params) -> torch.nn.Module`` mapping a float batch ``(N, C, H, W)`` in 0..1
    to one of the same shape, every sample with its own random parameters (torch's RNG). An
    augmentation without a device form keeps running on the loader workers.
    """


@hookspec
def ensemble_register_decisions() -> list[ComponentSpec]:
    """Decision rules that turn the combined 18-class probabilities into classes. Factory:
    ``factory(**params) -> Decision``.

    A decision has ``fit(log_probs (N, 18), targets (N,)) -> self`` (out-of-fold), ``__call__(log_probs)
    -> scores (N, 18)`` whose arg-max is the decision, ``fitted() -> dict`` (JSON-able parameters,
    saved in ``decision.json``) and ``load(dict) -> self``, and takes the parameters ``force``,
    ``match_confidence`` and ``cv_folds`` (stored as attributes). See
    :mod:`ensemble_core.ensemble.decision`.
    """


@hookspec
def ensemble_register_label_spaces() -> list[ComponentSpec]:
    """Label spaces: the factors of a competition's labels and how the final classes compose. Factory:
    ``factory(**params) -> ensemble_core.labelspace.LabelSpace``.

    A data set (``dataset`` kind) names the label space its labels live in; the ``joint`` and ``factor``
    tasks, the combiner, the report and the decisions work from it. See :mod:`ensemble_core.labelspace`.
    """


@hookspec
def ensemble_register_datasets() -> list[ComponentSpec]:
    """Data layouts (the recipe's ``dataset: {name, params}``). Factory: ``factory(**params) -> DataLayout``.

    A layout has ``name``, ``factor_names`` (known before any file is read), ``label_space`` (a
    ``LabelSpace``, or None until the data is read), ``group_column``, ``check(data_dir, decode=True,
    num_threads=None) -> CheckReport`` (the preflight), ``load(data_dir, exclude=()) -> Dataset`` (its
    ``label_space`` set) and the submission format (``submission_columns``, ``submission_value`` "id" or
    "name"). See :mod:`ensemble_core.data.formats`.
    """


@hookspec(firstresult=True)
def ensemble_resolve_component(kind: str, name: str) -> ComponentSpec | None:
    """Resolve a name that no plugin registered (e.g. any timm model name as a backbone).

    Return a spec or ``None``. Called only after the registry misses, so it
    may import heavy libraries.
    """
