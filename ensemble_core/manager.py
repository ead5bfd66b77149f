"""The plugin manager: hook specs, built-in plugins, entry points, the registry.

Built-in plugins (``ensemble_core_plugins``) register through exactly the same
hooks as third-party plugins. Third-party packages are found through the
``ensemble_core`` entry point group unless
``ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD=1``. A module that implements a hook
with a misspelled name fails fast (``check_pending``).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import replace
from types import ModuleType
from typing import Iterable

import pluggy

from ensemble_core import hookspecs
from ensemble_core.errors import EnsembleCoreError
from ensemble_core.registry import KINDS, ComponentSpec, Registry, plural

ENTRY_POINT_GROUP = "ensemble_core"
DISABLE_ENV = "ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_MODULES: tuple[str, ...] = (
    "ensemble_core_plugins.backbones",
    "ensemble_core_plugins.augmentations",
    "ensemble_core_plugins.batch_augmentations",
    "ensemble_core_plugins.losses",
    "ensemble_core_plugins.optimizers",
    "ensemble_core_plugins.schedulers",
    "ensemble_core_plugins.voters",
    "ensemble_core_plugins.tasks",
    "ensemble_core_plugins.label_transforms",
    "ensemble_core_plugins.splitters",
    "ensemble_core_plugins.ttas",
    "ensemble_core_plugins.device_augmentations",
    "ensemble_core_plugins.executors",
    "ensemble_core_plugins.decisions",
    "ensemble_core_plugins.label_spaces",
    "ensemble_core_plugins.datasets",
    "ensemble_core_plugins.weights",
)


class PluginError(EnsembleCoreError):
    """A plugin could not be loaded or implements an unknown hook."""


def _hook_name(kind: str) -> str:
    return f"ensemble_register_{plural(kind)}"


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


class Catalog:
    """A loaded plugin manager plus the registry it fed."""

    def __init__(self, pm: pluggy.PluginManager, registry: Registry, sources: dict[str, str]):
        self.pm = pm
        self.registry = registry
        self.sources = sources  # plugin name -> where it came from

    def __getitem__(self, kind: str):
        return self.registry[kind]


def _collect(pm: pluggy.PluginManager, registry: Registry) -> None:
    for kind in KINDS:
        hook = getattr(pm.hook, _hook_name(kind))
        for impl in reversed(hook.get_hookimpls()):  # registration order
            origin = pm.get_name(impl.plugin) or repr(impl.plugin)
            result = impl.function()
            if result is None:
                continue
            if isinstance(result, ComponentSpec):
                result = [result]
            for spec in result:
                if not isinstance(spec, ComponentSpec):
                    raise PluginError(f"plugin {origin!r}: {_hook_name(kind)}() must return ComponentSpec objects, "
                                      f"got {type(spec).__name__}")
                if spec.kind != kind:
                    raise PluginError(f"plugin {origin!r}: {_hook_name(kind)}() returned {spec.name!r} of kind "
                                      f"{spec.kind!r}; return it from {_hook_name(spec.kind)}() instead")
                registry.add(spec if spec.origin else replace(spec, origin=origin))


def _check_pending(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(sorted(_hook_name(k) for k in KINDS))
        raise PluginError(f"{exc}. Known hooks: {known}, ensemble_resolve_component") from exc


def _load_entry_points(pm: pluggy.PluginManager, sources: dict[str, str]) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party package must name itself
            dist = getattr(ep, "dist", None)
            who = f"{dist.name} {dist.version}" if dist else ep.value
            raise PluginError(f"entry point {ep.name!r} = {ep.value!r} (from {who}) failed to load: {exc!r}. "
                              f"Fix or uninstall that package, or set {DISABLE_ENV}=1") from exc
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        sources[ep.name] = f"entry point {ep.value}" + (f" ({dist.name} {dist.version})" if dist else "")


def build_catalog(extra_plugins: Iterable[ModuleType | object] = (), autoload: bool | None = None) -> Catalog:
    """Make a fresh plugin manager and registry.

    ``extra_plugins`` are registered after the built-ins (tests and notebooks
    use this instead of installing a package).
    """
    pm = new_plugin_manager()
    sources: dict[str, str] = {}
    for modname in BUILTIN_MODULES:
        module = importlib.import_module(modname)
        pm.register(module, name=modname)
        sources[modname] = "built-in"
    if autoload is None:
        autoload = os.environ.get(DISABLE_ENV, "").strip().lower() not in ("1", "true", "yes")
    if autoload:
        _load_entry_points(pm, sources)
    for plugin in extra_plugins:
        name = pm.register(plugin)
        sources[name] = "registered in code"
    _check_pending(pm)
    registry = Registry(resolver=lambda kind, name: pm.hook.ensemble_resolve_component(kind=kind, name=name))
    _collect(pm, registry)
    return Catalog(pm, registry, sources)


_CATALOG: Catalog | None = None


def get_catalog() -> Catalog:
    """The process-wide catalog, built on first use."""
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = build_catalog()
    return _CATALOG


def set_catalog(catalog: Catalog | None) -> None:
    """Replace (or with None, reset) the process-wide catalog."""
    global _CATALOG
    _CATALOG = catalog


def get_registry() -> Registry:
    return get_catalog().registry
