"""The per-kind registry: lookup, listing, and the one builder every call site uses.

:class:`ComponentSpec` (frozen metadata: name, kind, a factory — a callable, or a lazy
``"package.module:attr"`` string so that listing never imports torch — a one-line description and the
plugin it came from) is part of the plugin contract and lives in :mod:`ensemble_core.hookspecs`;
it and the kind names are re-exported here.
"""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Any, Callable, Iterator, Mapping

from ensemble_core.errors import ComponentParamsError, DuplicateComponentError, UnknownComponentError
from ensemble_core.hookspecs import (ENGINE_ARGS, INJECTED_ARGS, KINDS, REGISTER_PREFIX,  # noqa: F401 (re-exported)
                                     ComponentSpec, import_object, kind_from_plural, kinds_from_hookspecs, plural,
                                     singular)

def normalize_ref(value: Any) -> dict[str, Any] | None:
    """``"name"`` or ``{"name": ..., "params": {...}}`` -> ``{"name": ..., "params": {...}}``."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value, "params": {}}
    if isinstance(value, Mapping) and "name" in value:
        return {"name": value["name"], "params": dict(value.get("params") or {})}
    raise TypeError(f"expected a component name or {{name:, params:}}, got {value!r}")


# The backbone parameters that name pretrained weights (the short forms first); see :func:`backbone_weights`.
WEIGHTS_PARAMS = ("pretrained", "pretrained_path", "weights")
# What a backbone factory sets on the model it built from pretrained weights: its weight source's record.
WEIGHTS_RECORD_ATTR = "weights_record"


def without_weights(ref: Any) -> dict[str, Any]:
    """A backbone reference with its :data:`WEIGHTS_PARAMS` left out: the architecture alone, for a finished
    member that gets its own trained weights (``predict``, ``export``), so that rebuilding it never needs the
    pretrained weights' package, file or network."""
    ref = normalize_ref(ref)
    return {"name": ref["name"], "params": {k: v for k, v in ref["params"].items() if k not in WEIGHTS_PARAMS}}


def uses_weights(params: Mapping[str, Any]) -> bool:
    """Whether a backbone's params ask for pretrained weights (any of :data:`WEIGHTS_PARAMS` set)."""
    return any((params or {}).get(k) for k in WEIGHTS_PARAMS)


def backbone_weights(params: Mapping[str, Any], model_name: str = "?") -> dict[str, Any] | None:
    """The ``weights`` reference a backbone's params ask for, or None (random initialisation).

    ``pretrained: true`` is short for ``weights: timm_hub`` and ``pretrained_path: P`` for
    ``weights: {name: file, params: {path: P}}``; naming more than one is a ``ValueError``."""
    given = [k for k in WEIGHTS_PARAMS if params.get(k)]
    if len(given) > 1:
        raise ValueError(f"backbone {model_name!r}: set one of pretrained, pretrained_path and weights, not "
                         f"{' and '.join(given)} (pretrained: true is weights: timm_hub, pretrained_path: P is "
                         f"weights: {{name: file, params: {{path: P}}}})")
    if params.get("pretrained"):
        return {"name": "timm_hub", "params": {}}
    if params.get("pretrained_path"):
        return {"name": "file", "params": {"path": params["pretrained_path"]}}
    return normalize_ref(params["weights"]) if params.get("weights") else None


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
        problems = spec.bind({k: v for k, v in merged.items() if k not in engine}, registry=self)
        if problems:
            raise ComponentParamsError([f"{field or kind}.params: {p}" for p in problems])
        if any(p.name == "registry" for p in spec.signature().parameters.values()):
            merged["registry"] = self
        return spec.build(*engine_args, **merged)

    def kinds(self) -> tuple[str, ...]:
        return KINDS

    def all(self) -> list[ComponentSpec]:
        return [s for k in KINDS for s in self._kinds[k]]
