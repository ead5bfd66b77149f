"""Hook specifications: the whole contract between ensemble_core and its plugins.

Every component kind has one ``ensemble_register_<kind>s()`` hook. A plugin
implements any of them and returns a list of :class:`ComponentSpec` (defined
here, at the bottom: the hooks' return type is part of the contract, and this
module imports nothing else of ensemble_core, so nothing can import it in a circle;
``ensemble_core.registry`` and ``ensemble_core`` re-export it). Built-in plugins
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

import difflib
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pluggy

PROJECT = "ensemble_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ensemble_register_backbones() -> list[ComponentSpec]:
    """Backbones. Factory: ``factory(num_classes: int, **params) -> torch.nn.Module``.

    ``params`` usually include ``weights`` (a component of the ``weights`` kind;
    ``pretrained`` / ``pretrained_path`` are its short forms). The module maps an
    image batch ``(N, 3, H, W)`` to logits ``(N, num_classes)``. A backbone that
    loaded pretrained weights sets ``model.weights_record`` to its weight source's
    record, whose ``input_config`` decides how the member normalises its images.
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


@hookspec
def ensemble_register_weights() -> list[ComponentSpec]:
    """Weight sources: where a backbone's pretrained weights come from (timm's hub, a local file, a pip
    package). A backbone names one as its ``weights`` parameter. Factory: ``factory(**params) -> source``
    with

    - ``problems(model_name: str) -> list[str]``: why the source cannot deliver weights for that timm
      architecture here (package missing, file of another architecture, hub unreachable), each with the fix;
      empty when it can. Cheap: ``validate`` calls it before any training.
    - ``load(model, model_name: str) -> dict``: load the weights into the built ``model`` (its classifier
      is left out when its shape differs) and return the record a member keeps in ``config.json``: at least
      ``source``, ``file``, ``sha256``, ``loaded`` (tensors loaded), ``left_out`` (names not loaded) and
      ``input_config`` (``mean``, ``std``, ``interpolation`` the weights were trained with).

    A source never falls back to random weights: it raises ``ensemble_core.errors.TrainingError`` naming
    the fix. See ``ensemble_core_plugins.weights``.
    """


@hookspec(firstresult=True)
def ensemble_resolve_component(kind: str, name: str) -> ComponentSpec | None:
    """Resolve a name that no plugin registered (e.g. any timm model name as a backbone).

    Return a spec or ``None``. Called only after the registry misses, so it
    may import heavy libraries.
    """


# ---- component specs: what every register hook returns ------------------------------------------

REGISTER_PREFIX = "ensemble_register_"


# kinds whose name is the same in the singular and the plural (``list weights``, ``unknown weights 'x'``)
INVARIANT_KINDS = ("weights",)


def singular(word: str) -> str:
    """'losses' -> 'loss', 'backbones' -> 'backbone' (the inverse of :func:`plural`)."""
    if word in INVARIANT_KINDS:
        return word
    return word[:-2] if word.endswith("ses") and word[:-2].endswith("s") else word[:-1]


def plural(kind: str) -> str:
    if kind in INVARIANT_KINDS:
        return kind
    return kind + "es" if kind.endswith("s") else kind + "s"


def kinds_from_hookspecs(module: Any = None) -> tuple[str, ...]:
    """One kind per ``ensemble_register_<kind>s`` hook specification, in the order they are declared
    (``module``: this module by default)."""
    module = sys.modules[__name__] if module is None else module
    marker = f"{PROJECT}_spec"
    return tuple(singular(name[len(REGISTER_PREFIX):]) for name, obj in vars(module).items()
                 if name.startswith(REGISTER_PREFIX) and hasattr(obj, marker))


# every component kind: the hook specifications are the one list (a new kind is a new register hook)
KINDS: tuple[str, ...] = kinds_from_hookspecs()

# Leading arguments the engine passes positionally per kind; never bound from a recipe.
ENGINE_ARGS: Mapping[str, tuple[str, ...]] = {
    "backbone": ("num_classes",),
    "batch_augmentation": ("num_classes",),
    "optimizer": ("parameters",),
    "scheduler": ("optimizer", "epochs", "steps_per_epoch"),
}


# Keyword arguments the engine injects when a factory declares them (never bound from a recipe):
# ``registry`` lets a composite component (a weighted sum of losses) build its parts from the same registry.
INJECTED_ARGS: tuple[str, ...] = ("registry",)


def kind_from_plural(word: str) -> str | None:
    """'losses' -> 'loss', 'backbones' -> 'backbone'; None when not a kind."""
    for kind in KINDS:
        if word in (kind, plural(kind)):
            return kind
    return None


def import_object(path: str) -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"lazy factory {path!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component.

    ``nested`` maps a parameter name to a kind when that parameter holds
    component references (``{"name": ..., "params": {...}}`` or a list of them);
    recipe validation checks those recursively (e.g. the terms of a weighted loss).
    """

    name: str
    kind: str
    factory: Callable[..., Any] | str
    description: str = ""
    origin: str = ""
    nested: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ComponentSpec {self.name!r}: unknown kind {self.kind!r}; kinds are {', '.join(KINDS)}")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"ComponentSpec of kind {self.kind!r} needs a non-empty string name")

    def load(self) -> Callable[..., Any]:
        """The factory itself, importing it if it was given as a string."""
        if isinstance(self.factory, str):
            return import_object(self.factory)
        return self.factory

    def build(self, *engine_args: Any, **params: Any) -> Any:
        return self.load()(*engine_args, **params)

    def signature(self) -> inspect.Signature:
        return inspect.signature(self.load())

    def parameters(self) -> list[inspect.Parameter]:
        """Recipe-settable parameters (engine-supplied leading arguments removed)."""
        skip = set(ENGINE_ARGS.get(self.kind, ())) | set(INJECTED_ARGS)
        return [p for p in self.signature().parameters.values()
                if p.name not in skip and p.kind not in (p.VAR_POSITIONAL,)]

    def bind(self, params: Mapping[str, Any], registry: Any = None) -> list[str]:
        """Check ``params`` against the factory signature; return problems (empty when fine). A factory's
        own ``check_params(params)`` runs last, given ``registry`` too when it declares it (to check the
        components its parameters name, e.g. a backbone's weight source)."""
        plist = self.parameters()
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in plist)
        named = [p for p in plist if p.kind != p.VAR_KEYWORD]
        valid = [p.name for p in named]
        problems = []
        for key in params:
            if key not in valid and not accepts_any:
                close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                problems.append(f"unknown parameter {key!r} for {self.kind} {self.name!r}.{hint} "
                                f"Valid names: {', '.join(valid) or '(none)'}")
        for p in named:
            if p.name in params:
                why = _scalar_type_problem(p.annotation, params[p.name])
                if why:
                    problems.append(f"parameter {p.name!r} of {self.kind} {self.name!r} {why}")
        for p in named:
            if p.default is p.empty and p.name not in params and p.kind != p.VAR_KEYWORD:
                problems.append(f"missing required parameter {p.name!r} for {self.kind} {self.name!r}")
        check = getattr(self.load(), "check_params", None)     # a factory's own cheap check of its values
        if not problems and callable(check):
            wants_registry = "registry" in inspect.signature(check).parameters
            problems.extend(check(dict(params), registry=registry) if wants_registry else check(dict(params)))
        return problems


_SCALARS = {"bool": (bool,), "int": (int,), "float": (int, float)}


def _scalar_type_problem(annotation: Any, value: Any) -> str:
    """Why ``value`` does not fit a plain ``bool`` / ``int`` / ``float`` annotation (``| None`` allowed);
    empty when it fits or the annotation is anything else. A command line that spells ``false`` bare
    gives the string 'false', which would otherwise read as true."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None) or str(annotation)
    parts = [t.strip() for t in str(text).split("|")]
    optional = "None" in parts
    parts = [t for t in parts if t != "None"]
    if len(parts) != 1 or parts[0] not in _SCALARS or (value is None and optional):
        return ""
    want = parts[0]
    fits = isinstance(value, _SCALARS[want]) and (want == "bool" or not isinstance(value, bool))
    if fits:
        return ""
    spelled = {"bool": "true or false", "int": "a whole number", "float": "a number"}[want]
    hint = ""
    if isinstance(value, str):
        hint = (" (on a fire command line write Python literals inside {...}: False, True, 0.5)" if want == "bool"
                else " (a string: YAML reads 1e-3 as text, write 1.0e-3; on a fire command line write 0.001)")
    return f"must be {spelled}{' or null' if optional else ''}, got {value!r}{hint}"
