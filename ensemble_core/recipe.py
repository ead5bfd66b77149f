"""Recipes are plain data: a versioned dict (or YAML / JSON file) that round-trips losslessly.

    version: 1
    name: full
    seed: 42
    split: {name: shuffle, params: {n_splits: 3, val_fraction: 0.2}}
    refit: 0                             # members per backbone trained on every person, for the eval vote only
    refit_share: 0.5                     # their share of their group's eval vote
    voter: {name: soft}
    decision: {name: argmax}             # how the 18-class probabilities become classes (fitted on OOF)
    executor: {name: local}
    dataset: {name: image_folder}          # the data layout and its label space (default mask_competition)
    defaults: {...member fields...}        # shared by every task entry
    tasks:
      - task: mask                         # a component name, or {name:, params:}
        backbones: [resnext50d_32x4d]      # one member per backbone per split
        loss: cross_entropy
        ...member fields overriding defaults

:func:`validate` resolves every component name and binds every parameter
against its factory's signature before any model exists, and reports every
problem at once with its field path. :meth:`Recipe.plan` expands the recipe into
:class:`Member` objects (task x backbone x split, then ``refit`` members per task x backbone).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Mapping

from ensemble_core.errors import EnsembleCoreError, OverrideError, RecipeError, UnknownComponentError
from ensemble_core.registry import normalize_ref

RECIPE_VERSION = 1

# Member fields: name -> (default, kind for component refs or None, is_list)
COMPONENT_FIELDS: dict[str, tuple[str, bool]] = {
    "task": ("task", False),
    "backbone": ("backbone", False),
    "label_transform": ("label_transform", False),
    "preprocess": ("augmentation", True),
    "augmentations": ("augmentation", True),
    "batch_augmentation": ("batch_augmentation", False),
    "loss": ("loss", False),
    "optimizer": ("optimizer", False),
    "scheduler": ("scheduler", False),
    "tta": ("tta", True),
}

MEMBER_DEFAULTS: dict[str, Any] = {
    "task": None,
    "backbone": None,
    "label_transform": None,
    "preprocess": [],
    "augmentations": [],
    "batch_augmentation": None,
    "loss": "cross_entropy",
    "optimizer": {"name": "adamw", "params": {"lr": 1e-3}},
    "scheduler": None,
    "tta": ["hflip"],
    "image_size": [64, 48],
    "load_size": None,
    "epochs": 3,
    "batch_size": 32,
    "grad_clip": None,
    "ema_decay": None,
    "early_stopping_patience": None,
    "val_every": 1,
    "num_workers": 0,
    "amp": "auto",
    "channels_last": "auto",
    "compile": False,
    "max_nonfinite_steps": 3,
    "eval_batch_size": None,
    "threads": 1,
    "augment_on": "workers",
    "eval_image_size": None,
    # fine-tuning pretrained weights (docs/TRAINING.md "Fine-tuning")
    "input_config": None,        # {mean, std, interpolation}: null follows the backbone's weights (else ImageNet's)
    "layer_decay": None,         # learning rate x decay per layer group below the head (timm's layer decay)
    "head_only_epochs": 0,       # epochs (a fraction allowed) training the head alone, the backbone frozen
    "bn_eval": False,            # BatchNorm layers keep their running statistics (eval mode) while training
}

# resize interpolations a member's input_config may name (the data layer maps them onto OpenCV's)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos")

# Member fields added after run folders existed, with the value that reproduces the older behaviour: at that
# value a field is left out of the config hash, so a folder trained before the field existed keeps its name.
HASH_NEUTRAL: dict[str, Any] = {"threads": 1, "augment_on": "workers", "eval_image_size": None, "val_every": 1,
                                "input_config": None, "layer_decay": None, "head_only_epochs": 0, "bn_eval": False}

TOP_LEVEL: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "name": "recipe",
    "seed": 42,
    "split": {"name": "shuffle", "params": {"n_splits": 3, "val_fraction": 0.2}},
    "refit": 0,               # members per task entry x backbone trained on every person (left out of recipe.json at 0)
    "refit_share": 0.5,       # the refit members' share of their group's eval vote (left out at 0.5)
    "voter": {"name": "soft"},
    "decision": {"name": "argmax"},
    "executor": {"name": "local"},
    "dataset": None,          # the data layout; None (left out of recipe.json): mask_competition
    "defaults": {},
    "tasks": [],
}
TASK_ONLY_FIELDS = ("backbones",)
REQUIRED_MEMBER = ("task", "backbone")


def _default(name: str) -> Any:
    """A member field's default, component references normalised as :meth:`Recipe.plan` normalises them."""
    value = copy.deepcopy(MEMBER_DEFAULTS[name])
    if name in COMPONENT_FIELDS:
        value = [normalize_ref(v) for v in value or []] if COMPONENT_FIELDS[name][1] else normalize_ref(value)
    return value


def _field(name: str) -> Any:
    return field(default_factory=lambda: _default(name))


@dataclass(frozen=True)
class Member:
    """One ensemble member, fully resolved: every field explicit and set, every component reference
    normalised to ``{name, params}``. Planned once per run (:meth:`Recipe.plan`) and passed as it is
    down to the trainer; plain data, so it pickles for process and Ray workers, and :meth:`to_dict` /
    :meth:`from_dict` give the JSON of job files and ``config.json``."""

    recipe: str
    task: dict
    backbone: dict
    split_index: int
    seed: int
    label_transform: dict | None = _field("label_transform")
    preprocess: list = _field("preprocess")
    augmentations: list = _field("augmentations")
    batch_augmentation: dict | None = _field("batch_augmentation")
    loss: dict = _field("loss")
    optimizer: dict = _field("optimizer")
    scheduler: dict | None = _field("scheduler")
    tta: list = _field("tta")
    image_size: list = _field("image_size")
    load_size: list | None = _field("load_size")
    epochs: int = _field("epochs")
    batch_size: int = _field("batch_size")
    grad_clip: float | None = _field("grad_clip")
    ema_decay: float | None = _field("ema_decay")
    early_stopping_patience: int | None = _field("early_stopping_patience")
    val_every: int = _field("val_every")
    num_workers: int = _field("num_workers")
    amp: str = _field("amp")
    channels_last: Any = _field("channels_last")
    compile: bool = _field("compile")
    max_nonfinite_steps: int = _field("max_nonfinite_steps")
    eval_batch_size: int | None = _field("eval_batch_size")
    threads: int = _field("threads")
    augment_on: str = _field("augment_on")
    eval_image_size: list | None = _field("eval_image_size")
    input_config: dict | None = _field("input_config")
    layer_decay: float | None = _field("layer_decay")
    head_only_epochs: float = _field("head_only_epochs")
    bn_eval: bool = _field("bn_eval")
    refit: bool = False    # trained on every person (split index n_splits + k), not on a person split

    IDENTITY = ("recipe", "task", "backbone", "split_index", "seed", "refit")

    @property
    def task_name(self) -> str:
        return self.task["name"]

    def validates_after(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) is scored on the validation people: every ``val_every``-th one and
        always the last (a refit member has no validation people at all)."""
        return (epoch + 1) % int(self.val_every) == 0 or epoch + 1 == int(self.epochs)

    @property
    def fields(self) -> dict[str, Any]:
        """The member fields (everything but its identity), as a new dict."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclass_fields(self)
                if f.name not in self.IDENTITY}

    def to_dict(self) -> dict[str, Any]:
        """``{recipe, task, backbone, split_index, seed, fields: {...}}``: the JSON of job files and
        ``config.json``, and what the run folder's name hashes."""
        data = {k: copy.deepcopy(getattr(self, k)) for k in self.IDENTITY}
        if not data["refit"]:   # a split member's dict (and so its hash and folder) is as before refit existed
            data.pop("refit")
        data["fields"] = self.fields
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Member":
        """The inverse of :meth:`to_dict` (a :class:`Member` is returned as it is); a field missing from an
        older run's dict takes its default."""
        if isinstance(data, Member):
            return data
        data = copy.deepcopy(dict(data))
        fields = data.pop("fields", None) or {}
        unknown = sorted(set(fields) - set(MEMBER_DEFAULTS)) + sorted(set(data) - set(cls.IDENTITY))
        if unknown:   # not a member of this version (a malformed job, another release's config.json)
            raise TypeError(f"member: unknown field(s) {', '.join(map(repr, unknown))}; this ensemble_core knows "
                            f"{', '.join(cls.IDENTITY)} and the member fields {', '.join(MEMBER_DEFAULTS)}")
        return cls(**data, **fields)

    def config_hash(self) -> str:
        data = self.to_dict()
        data["fields"] = {k: v for k, v in data["fields"].items()
                          if not (k in HASH_NEUTRAL and v == HASH_NEUTRAL[k])}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:10]

    @property
    def run_name(self) -> str:
        """Folder name: readable prefix + hash of the resolved config."""
        bb = self.backbone["name"].replace("/", "_").replace(".", "_")
        split = f"s{self.split_index}" + ("-refit" if self.refit else "")
        return f"{self.task_name}-{bb}-{split}-{self.config_hash()}"


_MEMBER_FIELDS = [f.name for f in dataclass_fields(Member) if f.name not in Member.IDENTITY]
if _MEMBER_FIELDS != [k for k in MEMBER_DEFAULTS if k not in ("task", "backbone")]:   # one list of member fields
    raise AssertionError(f"Member's fields {_MEMBER_FIELDS} and MEMBER_DEFAULTS {list(MEMBER_DEFAULTS)} differ")

MemberSpec = Member   # the name before members were typed (plugins and notebooks may still use it)


@dataclass
class Recipe:
    version: int = RECIPE_VERSION
    name: str = "recipe"
    seed: int = 42
    split: Any = field(default_factory=lambda: copy.deepcopy(TOP_LEVEL["split"]))
    refit: int = 0            # members per task entry x backbone trained on every training person (no validation)
    refit_share: float = 0.5  # on eval, each split member's prediction is blended with its group's refit members
    voter: Any = field(default_factory=lambda: {"name": "soft"})
    decision: Any = field(default_factory=lambda: {"name": "argmax"})
    executor: Any = field(default_factory=lambda: {"name": "local"})
    dataset: Any = None       # {name, params} of a `dataset` plugin; None: mask_competition
    defaults: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)

    # ---- serialisation -------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Recipe":
        if not isinstance(data, Mapping):
            raise RecipeError([f"a recipe must be a mapping, got {type(data).__name__}"], source)
        unknown = [k for k in data if k not in TOP_LEVEL]
        if unknown:
            raise RecipeError([_unknown_key(k, list(TOP_LEVEL), "") for k in unknown], source)
        return cls(**copy.deepcopy(dict(data)))

    def to_dict(self) -> dict[str, Any]:
        data = copy.deepcopy(asdict(self))
        if data.get("dataset") is None:   # the default layout: recipes and recipe.json read as before the field
            data.pop("dataset", None)
        if data.get("refit") == 0:        # likewise no refit members
            data.pop("refit", None)
        if data.get("refit_share") == TOP_LEVEL["refit_share"]:
            data.pop("refit_share", None)
        return data

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        path = Path(path)
        if path.is_dir():
            raise RecipeError([f"{str(path)!r} is a folder; pass a recipe file (.yaml, .yml or .json)"], str(path))
        if not path.is_file():
            raise RecipeError([f"file {str(path)!r} does not exist"], str(path))
        if path.suffix.lower() == ".py":
            raise RecipeError([f"{path} is a recipe module, not recipe data; print its recipe with `fire {path} "
                               f"recipe > recipe.json` (or run it with `fire {path} run`)"], str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError([f"cannot read {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); save "
                               f"it as UTF-8 YAML or JSON"], str(path)) from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # parser messages carry line and column
            kind = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON (a file not named .yaml / .yml)"
            raise RecipeError([f"cannot parse {path} as {kind}: {exc}"], str(path)) from exc
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        data = self.to_dict()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2)
        from ensemble_core.atomic import atomic_write_text
        atomic_write_text(path, text)

    # ---- overrides -----------------------------------------------------
    def override(self, **changes: Any) -> "Recipe":
        """A copy with dotted-path changes: ``override(**{"defaults.epochs": 2, "tasks.0.loss": "focal"})``."""
        data = self.to_dict()
        for dotted, value in changes.items():
            set_path(data, dotted, value)
        return Recipe.from_dict(data)

    # ---- planning ------------------------------------------------------
    def member_fields(self, index: int) -> dict[str, Any]:
        entry = self.tasks[index]
        merged = copy.deepcopy(MEMBER_DEFAULTS)
        merged.update(copy.deepcopy(self.defaults))
        merged.update({k: copy.deepcopy(v) for k, v in entry.items() if k not in TASK_ONLY_FIELDS})
        return merged

    def backbones(self, index: int) -> list[Any]:
        entry = self.tasks[index]
        if "backbones" in entry:
            return list(entry["backbones"])
        merged = self.member_fields(index)
        return [merged["backbone"]] if merged.get("backbone") is not None else []

    def n_splits(self) -> int:
        ref = normalize_ref(self.split)
        return int(ref["params"].get("n_splits", 3 if ref["name"] == "shuffle" else 5))

    def n_refit(self) -> int:
        """Members per task entry x backbone trained on every training person (after the split's members)."""
        return int(self.refit or 0)

    def plan(self) -> list[Member]:
        """Every member of the recipe: task entry x backbone x (split, then refit), in that order."""
        return [m for i in range(len(self.tasks)) for m in self.plan_entry(i)]

    def plan_entry(self, i: int) -> list[Member]:
        """The members of task entry ``i`` (backbone x split, then its ``refit`` members: split indices
        ``n_splits() ..``, each trained on every person with its own seed)."""
        members = []
        fields = self.member_fields(i)
        task = normalize_ref(fields.pop("task"))
        fields.pop("backbone", None)
        for key, (_, is_list) in COMPONENT_FIELDS.items():
            if key in fields:
                fields[key] = ([normalize_ref(v) for v in (fields[key] or [])] if is_list
                               else normalize_ref(fields[key]))
        for bb in self.backbones(i):
            for split in range(self.n_splits() + self.n_refit()):
                members.append(Member(recipe=self.name, task=task, backbone=normalize_ref(bb),
                                      split_index=split, seed=int(self.seed) + split,
                                      refit=split >= self.n_splits(), **copy.deepcopy(fields)))
        return members


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
BOOL_FIELDS = ("compile", "channels_last")   # member fields that hold booleans (channels_last may be "auto")


def parse_bool(flag: str, value: Any) -> bool:
    """A boolean flag's value: true/false/1/0/yes/no in any case (fire gives ``--flag`` as True), else an
    :class:`OverrideError` naming the flag; ``--quiet=flase`` must never count as true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise OverrideError(f"--{flag}={value!r}: not a boolean; use --{flag} or --{flag}=true / false (also 1/0, "
                        f"yes/no, any case)")


def coerce_override(dotted: str, value: Any) -> Any:
    """A command-line value for ``dotted``: the boolean member fields take the boolean words (strictly)."""
    last = dotted.rsplit(".", 1)[-1]
    if last in BOOL_FIELDS and not (last == "channels_last" and value == "auto"):
        return parse_bool(dotted, value)
    return value


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``data[a][b][0]...`` from ``"a.b.0..."``; a path that does not fit the recipe raises
    :class:`OverrideError` naming the path and why (never an IndexError / TypeError)."""
    parts = dotted.split(".")
    if not all(parts):
        raise OverrideError(f"--{dotted}: empty part in the dotted path; write it as e.g. defaults.epochs")
    node: Any = data
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the recipe"
        last = i == len(parts) - 1
        if isinstance(node, list):
            try:
                key: Any = int(part)
            except ValueError:
                raise OverrideError(f"--{dotted}: {here} is a list of {len(node)}; {part!r} must be an index "
                                    f"0..{len(node) - 1}") from None
            if not -len(node) <= key < len(node):
                raise OverrideError(f"--{dotted}: {here} has {len(node)} entr{'y' if len(node) == 1 else 'ies'} "
                                    f"(indexes 0..{len(node) - 1}); there is no entry {key}")
        elif isinstance(node, dict):
            key = part
            if not last and node.get(key) is None:
                node[key] = {}
        else:
            raise OverrideError(f"--{dotted}: {here} is {node!r} ({type(node).__name__}), not a mapping or list; "
                                f"it cannot hold {part!r}. Set --{'.'.join(parts[:i])}=VALUE instead")
        if last:
            node[key] = value
        else:
            if isinstance(node[key], str) and parts[i + 1] in ("name", "params"):
                node[key] = {"name": node[key], "params": {}}   # a component name becomes {name, params}
            node = node[key]


def _unknown_key(key: str, valid: list[str], where: str) -> str:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    loc = f"{where}.{key}" if where else key
    return f"{loc}: unknown field.{hint} Valid fields: {', '.join(valid)}"


def _check_ref(registry, kind: str, value: Any, path: str, problems: list[str]) -> None:
    try:
        ref = normalize_ref(value)
    except TypeError as exc:
        problems.append(f"{path}: {exc}")
        return
    if ref is None:
        return
    if isinstance(value, Mapping):
        extra = [k for k in value if k not in ("name", "params")]
        for k in extra:
            problems.append(_unknown_key(k, ["name", "params"], path))
        if value.get("params") is not None and not isinstance(value.get("params"), Mapping):
            problems.append(f"{path}.params: must be a mapping of parameter names to values, got {value['params']!r}")
            return
    try:
        spec = registry.get(kind, ref["name"], field=path)
    except UnknownComponentError as exc:
        problems.append(f"{path}.name: {exc}" if isinstance(value, Mapping) else f"{path}: {exc}")
        return
    try:
        binding = spec.bind(ref["params"], registry=registry)
    except (ImportError, AttributeError, ValueError) as exc:
        problems.append(f"{path}: cannot load factory of {kind} {ref['name']!r}: {exc!r}")
        return
    problems.extend(f"{path}.params: {p}" for p in binding)
    for pname, nkind in spec.nested.items():
        nested = ref["params"].get(pname)
        if nested is None:
            continue
        if isinstance(nested, list):
            items = [(f"{path}.params.{pname}[{j}]", item) for j, item in enumerate(nested)]
        elif isinstance(nested, Mapping) and "name" not in nested:  # {head: ref, ...}
            items = [(f"{path}.params.{pname}.{key}", item) for key, item in nested.items()]
        else:
            items = [(f"{path}.params.{pname}", nested)]
        for sub, item in items:
            if isinstance(item, Mapping) and "weight" in item:
                item = {k: v for k, v in item.items() if k != "weight"}
            _check_ref(registry, nkind, item, sub, problems)


def _check_scalar(fields: Mapping[str, Any], path: str, problems: list[str]) -> None:
    def bad(key: str, why: str) -> None:
        problems.append(f"{path}.{key}: {why}, got {fields.get(key)!r}")

    for key in ("epochs", "batch_size", "threads", "val_every"):
        v = fields.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            bad(key, "must be a positive integer")
    for key in ("image_size", "load_size", "eval_image_size"):
        v = fields.get(key)
        if v is None and key in ("load_size", "eval_image_size"):
            continue
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(isinstance(x, int) and x >= 8 for x in v)):
            bad(key, "must be [height, width] in pixels (integers >= 8)")
    for key in ("grad_clip", "ema_decay"):
        v = fields.get(key)
        if v is not None and (not isinstance(v, (int, float)) or v <= 0):
            bad(key, "must be a positive number or null")
    if fields.get("ema_decay") is not None and isinstance(fields.get("ema_decay"), (int, float)) \
            and not fields["ema_decay"] < 1:
        bad("ema_decay", "must be below 1 (e.g. 0.999)")
    if fields.get("amp") not in ("auto", "bf16", "fp16", "fp32"):
        bad("amp", "must be one of auto, bf16, fp16, fp32")
    if not (fields.get("channels_last") == "auto" or isinstance(fields.get("channels_last"), bool)):
        bad("channels_last", "must be auto, true or false")
    if not isinstance(fields.get("compile"), bool):
        bad("compile", "must be true or false")
    if fields.get("augment_on") not in ("workers", "device"):
        bad("augment_on", "must be workers (albumentations in the loader) or device (batched, on the training "
                          "device)")
    v = fields.get("num_workers")
    if not isinstance(v, int) or v < 0:
        bad("num_workers", "must be an integer >= 0")
    _check_fine_tuning(fields, bad)


def _check_fine_tuning(fields: Mapping[str, Any], bad) -> None:
    """``input_config``, ``layer_decay``, ``head_only_epochs`` and ``bn_eval``."""
    v = fields.get("layer_decay")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1):
        bad("layer_decay", "must be a number above 0 and at most 1 (e.g. 0.75: each layer group below the head "
                           "learns at 0.75 x the rate of the one above), or null")
    v, epochs = fields.get("head_only_epochs"), fields.get("epochs")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        bad("head_only_epochs", "must be a number of epochs >= 0 (a fraction allowed, e.g. 0.5)")
    elif v and isinstance(epochs, int) and v >= epochs:
        bad("head_only_epochs", f"must be below epochs ({epochs}), or the backbone never trains")
    if not isinstance(fields.get("bn_eval"), bool):
        bad("bn_eval", "must be true or false")
    v = fields.get("input_config")
    if v is None:
        return
    if not isinstance(v, Mapping) or set(v) - {"mean", "std", "interpolation"}:
        bad("input_config", "must be a mapping with any of mean, std (one number per channel) and interpolation, "
                            "or null to follow the backbone's weights")
        return
    for key in ("mean", "std"):
        x = v.get(key)
        if x is not None and (not isinstance(x, (list, tuple)) or not x or
                              not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in x)
                              or (key == "std" and not all(c > 0 for c in x))):
            bad("input_config", f"{key} must be a list of numbers, one per channel (e.g. [0.5, 0.5, 0.5])"
                                + ("; every std above 0" if key == "std" else ""))
    if v.get("interpolation") is not None and v["interpolation"] not in INTERPOLATIONS:
        bad("input_config", f"interpolation must be one of {', '.join(INTERPOLATIONS)}")


def _check_device_forms(registry, fields: Mapping[str, Any], path: str, problems: list[str]) -> None:
    """With ``augment_on: device`` the device form of each augmentation takes the same parameters."""
    for j, item in enumerate(fields.get("augmentations") or []):
        try:
            ref = normalize_ref(item)
        except TypeError:
            continue   # reported by _check_ref
        if ref["name"] not in registry["device_augmentation"]:
            continue   # no device form: it stays on the loader workers
        spec = registry.get("device_augmentation", ref["name"])
        problems.extend(f"{path}.augmentations[{j}].params: device form: {p}" for p in spec.bind(ref["params"]))


def device_notes(recipe: "Recipe", registry) -> list[str]:
    """Where each task entry's augmentations run when it asks for ``augment_on: device``."""
    notes = []
    for i in range(len(recipe.tasks)):
        fields = recipe.member_fields(i)
        if fields.get("augment_on") != "device":
            continue
        names = [normalize_ref(a)["name"] for a in fields.get("augmentations") or []]
        on_device = [n for n in names if n in registry["device_augmentation"]]
        on_workers = [n for n in names if n not in on_device]
        notes.append(f"tasks[{i}]: augment_on device: {', '.join(on_device) or 'none'} on the device"
                     + (f"; {', '.join(on_workers)} on the loader workers (no device form)" if on_workers else ""))
    return notes


def _label_space(registry, dataset: Any, problems: list[str]):
    """The label space of the recipe's data set as far as it is known before any file is read (a data set
    whose classes come from its folders gives its factor names with placeholder classes); None on a problem."""
    from ensemble_core.labelspace import LabelSpaceError, static_label_space

    try:
        layout = registry.build("dataset", dataset, field="dataset")
        return static_label_space(layout)
    except (ValueError, TypeError, LabelSpaceError, EnsembleCoreError) as exc:
        problems.append(f"dataset: {exc}")
        return None


def _check_task_fits(registry, task: Any, space, path: str, problems: list[str]) -> None:
    """A task that predicts a factor the data set's label space lacks is refused, naming the factors it has."""
    from ensemble_core.tasks import build_task, task_label_space_problems

    try:
        built = build_task(registry, task, label_space=space)
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return
    except (TypeError, EnsembleCoreError):
        return   # a bad reference or parameter: _check_ref reported it
    if hasattr(built, "covers"):
        problems.extend(f"{path}: {p}" for p in task_label_space_problems(built, space))


def _scheduler_name(fields: Mapping[str, Any]) -> str | None:
    """The scheduler's registered name; None without one or for a malformed reference (its own check reports it)."""
    try:
        return normalize_ref(fields["scheduler"])["name"] if fields.get("scheduler") is not None else None
    except (TypeError, ValueError, KeyError):
        return None


def _check_val_every(fields: Mapping[str, Any], where, problems: list[str]) -> None:
    """With ``val_every`` > 1 some epochs have no validation score: a plateau schedule steps on one every epoch."""
    every = fields.get("val_every")
    if not isinstance(every, int) or isinstance(every, bool) or every <= 1:
        return   # 1 (every epoch), or a bad value _check_scalar reported
    if _scheduler_name(fields) == "timm_plateau":
        problem = (f"{where('scheduler')}.scheduler: the plateau schedule steps on a validation score every epoch, "
                   f"and {where('val_every')}.val_every: {every} leaves epochs without one; use cosine / step, "
                   f"or val_every: 1")
        if problem not in problems:
            problems.append(problem)


def _check_refit(fields: Mapping[str, Any], where, problems: list[str]) -> None:
    """A refit member has no validation people: nothing to stop early on or to step a plateau schedule with.
    ``where(key)`` names the field's place (``defaults`` or ``tasks[i]``); a problem is reported once."""
    found = []
    if fields.get("early_stopping_patience"):
        found.append(f"{where('early_stopping_patience')}.early_stopping_patience: refit members train on every "
                     f"person, so there is no validation score to stop on; set refit: 0 or "
                     f"early_stopping_patience: null (refit members train the full epochs)")
    if _scheduler_name(fields) == "timm_plateau":
        found.append(f"{where('scheduler')}.scheduler: the plateau schedule steps on the validation score, which "
                     f"refit members do not have; use cosine / step, or refit: 0")
    problems.extend(p for p in found if p not in problems)


def validate(recipe: Recipe | Mapping[str, Any], registry=None, source: str | None = None,
             contracts: bool = True) -> Recipe:
    """Check everything that can be checked without building a model; raise :class:`RecipeError` listing all problems.

    With ``contracts`` (the default) the components a recipe names that are cheap to build (every kind but
    backbone, optimizer, scheduler; :data:`ensemble_core.contracts.QUICK_KINDS`) are built with their parameters
    and checked against their kind's contract, so a broken plugin component is refused before any training."""
    if registry is None:
        from ensemble_core.manager import get_registry
        registry = get_registry()
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe, source=source)
    problems: list[str] = []
    if recipe.version != RECIPE_VERSION:
        problems.append(f"version: this ensemble_core reads recipe version {RECIPE_VERSION}, got {recipe.version!r}")
    if not isinstance(recipe.seed, int):
        problems.append(f"seed: must be an integer, got {recipe.seed!r}")
    refit_ok = isinstance(recipe.refit, int) and not isinstance(recipe.refit, bool) and recipe.refit >= 0
    if not refit_ok:
        problems.append(f"refit: must be a whole number >= 0 (members per backbone trained on every person, "
                        f"e.g. 1), got {recipe.refit!r}")
    share = recipe.refit_share
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        problems.append(f"refit_share: must be a number above 0 and at most 1 (the refit members' share of their "
                        f"group's eval vote, e.g. 0.5), got {share!r}")
    _check_ref(registry, "splitter", recipe.split, "split", problems)
    _check_ref(registry, "voter", recipe.voter, "voter", problems)
    _check_ref(registry, "decision", recipe.decision, "decision", problems)
    _check_ref(registry, "executor", recipe.executor, "executor", problems)
    n_before = len(problems)
    _check_ref(registry, "dataset", recipe.dataset, "dataset", problems)
    space = (_label_space(registry, recipe.dataset or "mask_competition", problems)
             if len(problems) == n_before else None)
    valid_member = list(MEMBER_DEFAULTS)
    if not isinstance(recipe.defaults, Mapping):
        problems.append(f"defaults: must be a mapping of member fields, got {recipe.defaults!r}")
    else:
        problems.extend(_unknown_key(k, valid_member, "defaults") for k in recipe.defaults if k not in MEMBER_DEFAULTS)
    if not isinstance(recipe.tasks, list) or not recipe.tasks:
        problems.append("tasks: must be a non-empty list of task entries (each with at least 'task' and a backbone)")
        raise RecipeError(problems, source)
    for i, entry in enumerate(recipe.tasks):
        path = f"tasks[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{path}: must be a mapping, got {entry!r}")
            continue
        problems.extend(_unknown_key(k, valid_member + list(TASK_ONLY_FIELDS), path)
                        for k in entry if k not in MEMBER_DEFAULTS and k not in TASK_ONLY_FIELDS)
        if not isinstance(recipe.defaults, Mapping):
            continue
        fields = recipe.member_fields(i)
        if fields.get("task") is None:
            problems.append(f"{path}.task: required (e.g. mask, gender, age_male, all18, multihead)")
        backbones = recipe.backbones(i)
        if not backbones:
            problems.append(f"{path}: needs 'backbone' or 'backbones'")

        def set_at(key: str, entry=entry, path=path) -> str:   # where a field was set: defaults or this entry
            return "defaults" if key in recipe.defaults and key not in entry else path

        for key, (kind, is_list) in COMPONENT_FIELDS.items():
            value = fields.get(key)
            if key == "backbone":
                for j, bb in enumerate(backbones):
                    _check_ref(registry, kind, bb, f"{path}.backbones[{j}]" if "backbones" in entry
                               else f"{path}.backbone", problems)
                continue
            if value is None:
                continue
            where = set_at(key)
            if is_list:
                if not isinstance(value, list):
                    problems.append(f"{where}.{key}: must be a list, got {value!r}")
                    continue
                for j, item in enumerate(value):
                    _check_ref(registry, kind, item, f"{where}.{key}[{j}]", problems)
            else:
                _check_ref(registry, kind, value, f"{where}.{key}", problems)
        _check_scalar(fields, path, problems)
        _check_val_every(fields, set_at, problems)
        if refit_ok and recipe.refit:
            _check_refit(fields, set_at, problems)
        if space is not None and fields.get("task") is not None:
            _check_task_fits(registry, fields["task"], space, f"{path}.task", problems)
        if fields.get("augment_on") == "device":
            _check_device_forms(registry, fields, path, problems)
    if contracts and not problems:   # every name and parameter fits: build the cheap components and check their contracts
        from ensemble_core.contracts import recipe_problems
        problems = recipe_problems(recipe, registry)
    if problems:
        raise RecipeError(problems, source)
    return recipe


def _task_label(entry: Any) -> str:
    try:
        return normalize_ref(entry.get("task"))["name"]
    except (TypeError, KeyError, AttributeError):
        return "?"


def shadowed_defaults(recipe: Recipe | Mapping[str, Any]) -> list[str]:
    """One warning per ``defaults`` field that every task entry sets itself, so that it changes no member (a task
    entry's own field wins over ``defaults``, which wins over :data:`MEMBER_DEFAULTS`), naming the tasks: what
    ``validate`` and ``run`` print, and the run's report notes. ``--defaults.loss=X`` on a recipe whose tasks
    all name their loss would otherwise train every member with the tasks' losses and say nothing."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    entries = recipe.tasks if isinstance(recipe.tasks, list) else []
    if not isinstance(recipe.defaults, Mapping) or not entries or not all(isinstance(e, Mapping) for e in entries):
        return []
    notes = []
    for key in recipe.defaults:
        setters = ("backbone", "backbones") if key == "backbone" else (key,)
        if all(any(k in entry for k in setters) for entry in entries):
            tasks = ", ".join(f"tasks[{i}] {_task_label(e)}" for i, e in enumerate(entries))
            notes.append(f"defaults.{key} changes no member: every task entry sets its own {key} ({tasks}), and a "
                         f"task's field wins over defaults; set it per task (e.g. --tasks.0.{key}=...) or remove "
                         f"{key} from the tasks")
    return notes


def validate_run(recipe: Recipe | Mapping[str, Any], registry=None, source: str | None = None,
                 **replace: Any) -> Recipe:
    """The check every entry point that builds components makes first (``run``, ``ensemble``, ``tune``,
    ``predict``): ``recipe`` with the top-level fields a command's flags replace (``voter=``, ``decision=``,
    ``dataset=``, ...; None keeps the recipe's), validated with the cheap contract checks (:func:`validate`), so a
    broken or misspelt component is one line naming it and its plugin before anything is built or written.
    Returns the validated :class:`Recipe` with the replacements applied."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe, source=source)
    changes = {k: v for k, v in replace.items() if v is not None}
    unknown = sorted(set(changes) - set(TOP_LEVEL))
    if unknown:
        raise TypeError(f"validate_run: {', '.join(unknown)} are not top-level recipe fields ({', '.join(TOP_LEVEL)})")
    if changes:
        shown = ", ".join(f"{k} {normalize_ref(v)['name'] if isinstance(v, (str, Mapping)) else v!r}"
                          for k, v in changes.items())
        source = f"{source or 'recipe'} with {shown}"
        recipe = Recipe.from_dict({**recipe.to_dict(), **changes}, source=source)
    return validate(recipe, registry=registry, source=source)
