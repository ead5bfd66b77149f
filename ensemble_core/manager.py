"""The plugin manager: hook specs, built-in plugins, entry points, the registry.

Built-in plugins (``ensemble_core_plugins``) register through exactly the same
hooks as third-party plugins. Third-party packages are found through the
``ensemble_core`` entry point group unless
``ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD=1``. A module that implements a hook
with a misspelled name, or a function named like a hook but not marked ``@hookimpl``, fails fast naming the
plugin, the close match and the way out (``_hook_problems``).
"""
from __future__ import annotations

import difflib
import importlib
import inspect
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
HOOK_PREFIX = "ensemble_"   # every hook's name starts so: a function named so is looked at

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


def hook_names(pm: pluggy.PluginManager) -> list[str]:
    """The hooks a plugin may implement: the live plugin manager's hook specifications (a hook added to
    ``hookspecs.py`` is covered without a list to update)."""
    return sorted(name for name, caller in vars(pm.hook).items() if not name.startswith("_") and caller.has_spec())


def _close_hook(name: str, hooks: list[str]) -> str | None:
    close = difflib.get_close_matches(name, hooks, n=1, cutoff=0.8)
    return close[0] if close else None


def _who(pm: pluggy.PluginManager, plugin: object, sources: dict[str, str]) -> str:
    """``plugin 'name' (where it came from, its file)`` for messages."""
    name = pm.get_name(plugin) or ""
    where = [sources[name]] if name in sources else []
    if not name or name.isdigit():   # registered in code without a name: pluggy named it by its id
        name = getattr(plugin, "__name__", None) or repr(plugin)
    where += [str(getattr(plugin, "__file__", "") or "")] if getattr(plugin, "__file__", None) else []
    return f"plugin {name!r}" + (f" ({'; '.join(where)})" if where else "")


def _way_out(pm: pluggy.PluginManager, plugin: object, sources: dict[str, str]) -> str:
    """How to get every command working again meanwhile: only an entry-point plugin can be switched off."""
    if sources.get(pm.get_name(plugin) or "", "").startswith("entry point"):
        return (f" Until it is fixed, {DISABLE_ENV}=1 skips entry-point plugins (or uninstall that package) so "
                f"every other command works.")
    return ""


def _hook_problems(pm: pluggy.PluginManager, sources: dict[str, str]) -> list[str]:
    """A hook implementation whose hook does not exist (a misspelt name: the close match named), and a function
    named like a hook but not marked ``@hookimpl`` (pluggy ignores it, so its components would be unknown)."""
    hooks = hook_names(pm)
    problems = []
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = _close_hook(name, hooks)
            hint = (f"Did you mean {close!r}? Rename the function." if close else
                    f"Known hooks: {', '.join(hooks)}.")
            problems.append(f"{_who(pm, impl.plugin, sources)} implements the unknown hook {name!r}. {hint}"
                            + _way_out(pm, impl.plugin, sources))
    for plugin in pm.get_plugins():
        for attr in dir(plugin):
            if not attr.startswith(HOOK_PREFIX):
                continue
            hook = attr if attr in hooks else _close_hook(attr, hooks)
            value = getattr(plugin, attr, None)
            if hook is None or not inspect.isroutine(value) or pm.parse_hookimpl_opts(plugin, attr) is not None:
                continue
            spelt = f"the hook {hook!r}" if hook == attr else f"the hook {hook!r} (misspelt)"
            problems.append(f"{_who(pm, plugin, sources)} defines {attr}() named like {spelt} but not marked "
                            f"@hookimpl, so ensemble_core would ignore it and its components would be unknown. "
                            f"Mark it: `from ensemble_core import hookimpl`, then `@hookimpl` above `def {hook}`."
                            + _way_out(pm, plugin, sources))
    return problems


def _check_hooks(pm: pluggy.PluginManager, sources: dict[str, str]) -> None:
    problems = _hook_problems(pm, sources)
    if problems:
        raise PluginError(" ".join(problems))
    pm.check_pending()   # nothing left for pluggy to find; kept so pluggy's own rule still holds


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None, what: str) -> str:
    """``pm.register``, a hook implementation whose arguments do not fit its hook becoming one line."""
    try:
        return pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        said = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"{what}: {said}. The hooks and their arguments are in ensemble_core/hookspecs.py and "
                          f"docs/ARCHITECTURE.md (Hooks)") from exc


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
        dist = getattr(ep, "dist", None)
        sources[ep.name] = f"entry point {ep.value}" + (f" ({dist.name} {dist.version})" if dist else "")
        _register(pm, plugin, ep.name, f"plugin {ep.name!r} ({sources[ep.name]})")


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
        name = _register(pm, plugin, None, f"plugin {getattr(plugin, '__name__', plugin)!r} (registered in code)")
        sources[name] = "registered in code"
    _check_hooks(pm, sources)
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
