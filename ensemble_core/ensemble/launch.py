"""What ``fire recipes/<name>.py run`` does, shared by every recipe file.

A recipe file defines ``build(preset) -> dict`` (plain recipe data) and thin
``recipe(preset)`` / ``run(...)`` functions that call :func:`recipe_data` and
:func:`launch`. ``launch`` resolves the preset, applies dotted overrides
(``--defaults.epochs=2``, ``--tasks.0.loss=focal``), makes the demo data when
no data folder is given, runs the pipeline into ``runs/<name>`` (so a rerun
resumes and skips finished members) and returns the paths and headline figures.

Executor flags: ``--executor local|process|ray`` picks the executor, ``--executor.params.NAME=VALUE``
sets its parameters (``--executor.params.workers=2``), and ``--ray_address ADDRESS`` joins a Ray
cluster (it implies ``--executor ray``). SIGINT / SIGTERM stop the run after the running members save a
checkpoint; the exit status is 128 + the signal number and rerunning the command resumes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ensemble_core.ensemble.presets import Preset, gpu_available, resolve_preset
from ensemble_core.errors import EnsembleCoreError
from ensemble_core.recipe import Recipe
from ensemble_core.stopping import RunInterrupted

DEMO_DATA_DIR = Path("runs") / "demo-data"
DEMO_NOTE = "synthetic demo faces from ensemble_core.data.demo, not the competition data"

RecipeBuilder = Callable[[Preset], Mapping[str, Any]]


def recipe_data(build: RecipeBuilder, preset: str | Preset | None = None, **overrides: Any) -> dict[str, Any]:
    """The recipe of ``build`` for ``preset`` with dotted ``overrides`` applied, as plain data."""
    recipe = Recipe.from_dict(dict(build(resolve_preset(preset))))
    if overrides:
        recipe = recipe.override(**overrides)
    return recipe.to_dict()


def demo_data(out_dir: str | Path = DEMO_DATA_DIR) -> Path:
    from ensemble_core.data.demo import make_demo
    return make_demo(out_dir)


EXECUTOR_PARAM_PREFIX = "executor.params."


def executor_choice(executor: Any, overrides: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Split the command line's executor flags from the recipe overrides.

    ``executor`` (a name, ``{name, params}`` or None = the recipe's), ``ray_address`` and
    ``executor.params.*`` overrides become one executor reference (None: keep the recipe's executor
    and let the ``executor.*`` overrides edit it); returns it and the remaining recipe overrides.
    """
    rest = dict(overrides)
    address = rest.pop("ray_address", None)
    if executor is None and address is None:
        return None, rest
    if isinstance(executor, Mapping):
        name, params = executor.get("name"), dict(executor.get("params") or {})
    else:
        name, params = (executor if executor is not None else "ray"), {}
    for key in [k for k in rest if k.startswith(EXECUTOR_PARAM_PREFIX)]:
        params[key[len(EXECUTOR_PARAM_PREFIX):]] = rest.pop(key)
    if address is not None:
        if name != "ray":
            raise EnsembleCoreError(f"--ray_address {address!r} is for --executor ray, but --executor is {name!r}; "
                                    f"drop one of them")
        params["address"] = str(address)
    return {"name": name, "params": params}, rest


def warn_if_gpu_preset_on_cpu(preset: Preset, recipe: Mapping[str, Any] | None = None) -> None:
    if not preset.sized_for_gpu or gpu_available():
        return
    backbones = sorted({m.backbone["name"] for m in Recipe.from_dict(recipe).plan()}) if recipe else \
        sorted(set(preset.backbones.values()))
    print(f"warning: preset {preset.name!r} is sized for a GPU ({preset.load_size[0]}x{preset.load_size[1]} "
          f"photos, {', '.join(backbones)}, {preset.epochs} epochs, pretrained weights); on this CPU it takes "
          f"hours. Use --preset small for a CPU run.", file=sys.stderr, flush=True)


def launch(name: str, build: RecipeBuilder, data_dir: str | Path | None = None, out_dir: str | Path | None = None,
           preset: str | Preset | None = None, executor: Any = None, quiet: bool = False,
           skip_bad_files: bool = False, **overrides: Any) -> dict[str, Any]:
    """Run recipe ``name`` end to end; returns paths and headline figures (fire prints them).

    Errors the user must fix (:class:`EnsembleCoreError`) are printed as one message and exit with
    status 1; call :func:`ensemble_core.ensemble.pipeline.run_recipe` to get the exception instead.
    """
    try:
        return _launch(name, build, data_dir, out_dir, preset, executor, quiet, skip_bad_files, overrides)
    except RunInterrupted as exc:  # SIGINT / SIGTERM: checkpoints are saved; say how to resume
        print(f"[{name}] {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_status) from exc
    except EnsembleCoreError as exc:  # a command-line entry point: the message, not a traceback
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from exc


def _launch(name: str, build: RecipeBuilder, data_dir, out_dir, preset, executor, quiet: bool,
            skip_bad_files: bool, overrides: Mapping[str, Any]) -> dict[str, Any]:
    from ensemble_core.ensemble.pipeline import run_recipe

    start = time.perf_counter()
    chosen = resolve_preset(preset)
    executor, overrides = executor_choice(executor, overrides)
    recipe = recipe_data(build, chosen, **overrides)
    warn_if_gpu_preset_on_cpu(chosen, recipe)
    data_note = None
    if data_dir is None:
        data_dir = demo_data()
        data_note = DEMO_NOTE
        if not quiet:
            print(f"[{name}] no data_dir given: using demo data in {data_dir}", flush=True)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / name
    result = run_recipe(recipe, data_dir=data_dir, out_dir=out_dir, executor=executor, quiet=quiet,
                        skip_bad_files=skip_bad_files, preset=chosen.name, data_note=data_note)
    oof = result.metrics["oof"]
    return {
        "submission": str(result.submission) if result.submission else None,
        "report": str(result.report),
        "metrics": str(result.metrics_path),
        "preset": chosen.name,
        "members_trained": result.trained,
        "members_reused": result.skipped,
        "oof_macro_f1": None if oof["macro_f1"] is None else round(oof["macro_f1"], 4),
        "oof_accuracy": None if oof["accuracy"] is None else round(oof["accuracy"], 4),
        "decision": result.metrics.get("decision", {}).get("applied"),
        "decision_oof_macro_f1_crossfit": _round(result.metrics.get("decision", {}).get("crossfit_macro_f1")),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def usage(name: str, summary: str) -> str:
    """What ``fire recipes/<name>.py run --help`` prints (fire would otherwise take --help as a recipe field)."""
    from ensemble_core.ensemble.presets import PRESET_NAMES
    return (f"{summary}\n\nUsage: fire recipes/{name}.py run [--data_dir DIR] [--out_dir DIR (default runs/{name})]\n"
            f"        [--preset {'|'.join(PRESET_NAMES)}] [--executor local|process|ray] [--ray_address ADDR]\n"
            f"        [--decision argmax|class_offsets|prior_power|factor_offsets]\n"
            f"        [--quiet] [--skip_bad_files] [--FIELD.PATH=VALUE ...]\n\n"
            f"Any recipe field can be overridden with a dotted flag, e.g. --defaults.epochs=2 or\n"
            f"--tasks.0.loss=focal; `fire recipes/{name}.py recipe` prints the recipe as plain data.")


def recipe_commands(name: str, build: RecipeBuilder, summary: str) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """The ``recipe`` and ``run`` functions a recipe file exposes to fire (the same for every recipe)."""

    def recipe(preset: str | None = None, **overrides: Any) -> dict:
        """The recipe as plain data (validate it with ensemble_core.recipe.validate)."""
        return recipe_data(build, preset, **overrides)

    def run(data_dir: str | None = None, out_dir: str | None = None, preset: str | None = None,
            executor: str | None = None, quiet: bool = False, skip_bad_files: bool = False,
            **overrides: Any) -> dict | None:
        if overrides.pop("help", None) is not None or overrides.pop("h", None) is not None:
            print(usage(name, summary))
            return None
        return launch(name, build, data_dir=data_dir, out_dir=out_dir, preset=preset, executor=executor,
                      quiet=quiet, skip_bad_files=skip_bad_files, **overrides)

    run.__doc__ = summary
    return recipe, run
