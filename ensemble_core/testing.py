"""Test your plugin's components against the contracts the engine relies on (like scikit-learn's
``check_estimator``).

    from ensemble_core.testing import check_component, parametrize_components

    def test_my_voter():
        check_component("voter", "median")               # raises ComponentContractError naming what is wrong

    @parametrize_components(plugin="ensemble_extra")    # every component my plugin registers
    def test_contract(kind, name):
        check_component(kind, name)

:func:`check_component` builds the component from the registry (entry-point plugins included) and runs
its kind's full check from :mod:`ensemble_core.contracts`: the same checks the project runs on its own
components (``tests/test_components_contract.py``), of which ``validate`` and member building run the
cheap part on every recipe. A component with required parameters gets them through ``params``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ensemble_core.contracts import check
from ensemble_core.errors import ComponentContractError
from ensemble_core.registry import KINDS, ComponentSpec

__all__ = ["ComponentContractError", "check_component", "check_spec", "components", "parametrize_components"]


def _registry(registry: Any = None) -> Any:
    if registry is not None:
        return getattr(registry, "registry", registry)   # a Catalog or a Registry
    from ensemble_core.manager import get_registry
    return get_registry()


def finished_member_job(run_dir: Path) -> Any:
    """A real :class:`~ensemble_core.executors.MemberJob` whose run folder holds ``DONE``: what the executor
    check hands an executor (it must report it skipped, training nothing)."""
    import numpy as np

    from ensemble_core.atomic import atomic_write_text
    from ensemble_core.executors import MemberJob
    from ensemble_core.runfolder import DONE_FILE

    atomic_write_text(run_dir / DONE_FILE, "contract check\n")
    return MemberJob(member={}, data_dir=str(run_dir.parent / "no-data"), train_rows=np.arange(0),
                     val_rows=np.arange(0), run_dir=str(run_dir))


def check_spec(spec: ComponentSpec, params: Mapping[str, Any] | None = None, registry: Any = None,
               **context: Any) -> Any:
    """Run the full contract check of ``spec`` (its kind's) with ``params``; return what the check returns
    (the learning rates of a scheduler, the last image of an augmentation, the task, ...)."""
    params = dict(params or {})
    missing = [p for p in spec.bind(params) if p.startswith("missing required parameter")]
    if missing:
        raise ComponentContractError(spec.kind, spec.name, spec.origin,
                                     f"cannot be built without its required parameter(s): {'; '.join(missing)}; "
                                     f"pass them as check_component(..., params={{...}})")
    if spec.kind == "executor":
        context.setdefault("make_job", finished_member_job)
    return check(spec.kind, spec, params, thorough=True, registry=registry, **context)


def check_component(kind: str, name: str, params: Mapping[str, Any] | None = None, registry: Any = None,
                    **context: Any) -> Any:
    """Build the registered component ``name`` of ``kind`` with ``params`` and check its contract.

    Raises :class:`~ensemble_core.errors.ComponentContractError` with one line naming the kind, the component,
    its plugin and what is missing or wrong. ``registry`` defaults to the process-wide one (built-ins and
    entry-point plugins); a :class:`~ensemble_core.manager.Catalog` is accepted too. ``context`` is passed to
    the check (``num_classes``, ``image_size``)."""
    reg = _registry(registry)
    return check_spec(reg.get(kind, name), params, registry=reg, **context)


def _from_plugin(spec: ComponentSpec, plugin: str | None) -> bool:
    return plugin is None or spec.origin == plugin or spec.origin.startswith(plugin + ".")


def components(kind: str | None = None, plugin: str | None = None, registry: Any = None) -> list[tuple[str, str]]:
    """``[(kind, name), ...]`` of every registered component, of one ``kind`` and / or from one ``plugin``
    (its name as ``python -m ensemble_core plugins`` shows it, or a module prefix of it)."""
    reg = _registry(registry)
    kinds = KINDS if kind is None else (reg[kind].kind,)
    return [(k, spec.name) for k in kinds for spec in reg[k] if _from_plugin(spec, plugin)]


def parametrize_components(kind: str | None = None, plugin: str | None = None, registry: Any = None):
    """A ``pytest.mark.parametrize("kind, name", ...)`` over :func:`components`, one test id per component
    (``voter:median``). Fails collection when nothing matches, so a misspelt plugin name is not a silent pass."""
    import pytest

    found = components(kind, plugin, registry)
    if not found:
        raise ValueError(f"no registered component matches kind={kind!r}, plugin={plugin!r}; "
                         f"`python -m ensemble_core plugins` lists the plugins")
    return pytest.mark.parametrize("kind, name", [pytest.param(k, n, id=f"{k}:{n}") for k, n in found])
