"""Component specs and the per-kind registry.

A :class:`ComponentSpec` is frozen metadata: name, kind, a factory (a callable,
or a lazy ``"package.module:attr"`` string so that listing never imports torch),
a one-line description and the plugin it came from.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from ensemble_core import hookspecs
from ensemble_core.errors import ComponentParamsError, DuplicateComponentError, UnknownComponentError

REGISTER_PREFIX = "ensemble_register_"


def singular(word: str) -> str:
    """'losses' -> 'loss', 'backbones' -> 'backbone' (the inverse of :func:`plural`)."""
    return word[:-2] if word.endswith("ses") and word[:-2].endswith("s") else word[:-1]


def kinds_from_hookspecs(module: Any = hookspecs) -> tuple[str, ...]:
    """One kind per ``ensemble_register_<kind>s`` hook specification, in the order they are declared."""
    marker = f"{hookspecs.PROJECT}_spec"
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


def normalize_ref(value: Any) -> dict[str, Any] | None:
    """``"name"`` or ``{"name": ..., "params": {...}}`` -> ``{"name": ..., "params": {...}}``."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value, "params": {}}
    if isinstance(value, Mapping) and "name" in value:
        return {"name": value["name"], "params": dict(value.get("params") or {})}
    raise TypeError(f"expected a component name or {{name:, params:}}, got {value!r}")


def plural(kind: str) -> str:
    return kind + "es" if kind.endswith("s") else kind + "s"


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


class LazyFactory:
    """A factory object named after what it builds (``TimmOptimizer('lion')``), for components resolved
    from another library by name. ``make_signature()``, when a subclass defines it, gives the parameters
    a recipe may set; it runs on first use only, so listing components imports nothing heavy."""

    def __init__(self, label: str):
        self.__qualname__ = f"{type(self).__name__}({label!r})"
        self.__module__ = type(self).__module__
        self._signature: inspect.Signature | None = None

    def __repr__(self) -> str:
        return self.__qualname__

    def make_signature(self) -> inspect.Signature:
        return inspect.signature(self.__call__)   # the bound method: its parameters without self

    @property
    def __signature__(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = self.make_signature()
        return self._signature


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

    def bind(self, params: Mapping[str, Any]) -> list[str]:
        """Check ``params`` against the factory signature; return problems (empty when fine)."""
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
            problems.extend(check(dict(params)))
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


class KindRegistry:
    """All components of one kind."""

    def __init__(self, kind: str, resolver: Callable[[str, str], ComponentSpec | None] | None = None):
        self.kind = kind
        self._specs: dict[str, ComponentSpec] = {}
        self._resolver = resolver

    def add(self, spec: ComponentSpec) -> None:
        if spec.kind != self.kind:
            raise ValueError(f"spec {spec.name!r} is a {spec.kind}, not a {self.kind}")
        old = self._specs.get(spec.name)
        if old is not None:
            raise DuplicateComponentError(
                f"{self.kind} {spec.name!r} is registered twice: by {old.origin or '?'} and by "
                f"{spec.origin or '?'}. Rename one, or disable one plugin "
                f"(ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD=1 skips entry-point plugins).")
        self._specs[spec.name] = spec

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def suggest(self, name: str, n: int = 3) -> list[str]:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
        if not close:
            low = name.lower()
            close = [c for c in names if low in c.lower() or c.lower() in low][:n]
        return close

    def get(self, name: str, field: str | None = None) -> ComponentSpec:
        spec = self._specs.get(name)
        if spec is None and self._resolver is not None:
            spec = self._resolver(self.kind, name)
        if spec is None:
            raise UnknownComponentError(self.kind, name, self.suggest(name), field)
        return spec

    def list(self, pattern: str | None = None) -> list[ComponentSpec]:
        """Specs whose name matches a shell-style wildcard (``*``, ``?``, ``[ab]``); case-insensitive."""
        if not pattern:
            return list(self)
        pats = [pattern] if any(c in pattern for c in "*?[") else [f"*{pattern}*"]
        return [s for s in self if any(fnmatch.fnmatch(s.name.lower(), p.lower()) for p in pats)]


class Registry:
    """Every kind's :class:`KindRegistry`; ``registry["loss"].get("soft_f1")``."""

    def __init__(self, resolver: Callable[[str, str], ComponentSpec | None] | None = None):
        self._kinds = {k: KindRegistry(k, resolver) for k in KINDS}

    def __getitem__(self, kind: str) -> KindRegistry:
        try:
            return self._kinds[kind]
        except KeyError:
            resolved = kind_from_plural(kind)
            if resolved is None:
                close = difflib.get_close_matches(kind, [plural(k) for k in KINDS], n=3)
                raise UnknownComponentError("kind", kind, close) from None
            return self._kinds[resolved]

    def add(self, spec: ComponentSpec) -> None:
        self._kinds[spec.kind].add(spec)

    def get(self, kind: str, name: str, field: str | None = None) -> ComponentSpec:
        return self[kind].get(name, field)

    def build(self, kind: str, ref: Any, *engine_args: Any, field: str | None = None, **params: Any) -> Any:
        """The one way a recipe reference becomes an object, used by every call site.

        ``ref`` is a component name or ``{"name": ..., "params": {...}}``; keyword ``params`` are added to
        its params. ``engine_args`` are the leading arguments the engine supplies for the kind
        (:data:`ENGINE_ARGS`); a factory that declares ``registry`` gets this registry (to build the
        parts of a composite component). ``field`` names the recipe field in error messages. Parameters
        that do not fit the factory raise :class:`ComponentParamsError` naming the field and the fix.
        """
        try:
            ref = normalize_ref(ref)
        except TypeError as exc:
            raise ComponentParamsError([f"{field or kind}: {exc}"]) from None
        if ref is None:
            raise ComponentParamsError([f"{field or kind}: no {kind} given; name one (`python -m ensemble_core "
                                        f"list {plural(kind)}`)"])
        spec = self.get(kind, ref["name"], field=field)
        merged = {**ref["params"], **params}
        engine = set(ENGINE_ARGS.get(kind, ()))   # an engine argument given by keyword is not a recipe param
        problems = spec.bind({k: v for k, v in merged.items() if k not in engine})
        if problems:
            raise ComponentParamsError([f"{field or kind}.params: {p}" for p in problems])
        if any(p.name == "registry" for p in spec.signature().parameters.values()):
            merged["registry"] = self
        return spec.build(*engine_args, **merged)

    def kinds(self) -> tuple[str, ...]:
        return KINDS

    def all(self) -> list[ComponentSpec]:
        return [s for k in KINDS for s in self._kinds[k]]
