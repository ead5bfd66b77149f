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

from ensemble_core.presets import Preset, gpu_available, resolve_preset
from ensemble_core.errors import EnsembleCoreError, OverrideError, error_line
from ensemble_core.recipe import TOP_LEVEL, Recipe, coerce_override, parse_bool, shadowed_defaults, validate
from ensemble_core.registry import normalize_ref
from ensemble_core.stopping import RunInterrupted

DEMO_DATA_DIR = Path("runs") / "demo-data"
DEMO_NOTE = "synthetic demo faces from ensemble_core.data.demo, not the competition data"

RecipeBuilder = Callable[[Preset], Mapping[str, Any]]


# the flags of ``fire recipes/<name>.py run`` besides recipe fields (fire spells --data-dir as data_dir)
RUN_FLAGS = ("data_dir", "out_dir", "preset", "executor", "ray_address", "quiet", "skip_bad_files", "help")
def check_override_names(overrides: Mapping[str, Any], run_flags: bool = True) -> None:
    """An override whose first part is neither a recipe field nor a run flag is a typo: say what was meant."""
    import difflib

    for key in overrides:
        head = key.split(".", 1)[0]
        if head in TOP_LEVEL:
            continue
        flags = list(RUN_FLAGS) if run_flags else []
        close = difflib.get_close_matches(head, list(dict.fromkeys(flags + list(TOP_LEVEL))), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
        listed = f"Run flags: {', '.join('--' + f for f in flags)}; " if flags else ""
        raise OverrideError(f"--{key}: unknown flag.{hint} {listed}recipe fields (dotted, e.g. "
                            f"--defaults.epochs=2): {', '.join(TOP_LEVEL)}")


def folder_flag(name: str, value: Any) -> str | None:
    """``--data_dir`` / ``--out_dir`` as a path string: fire turns ``--out_dir 5`` into an int and a flag given
    without a value into True."""
    if value is None or isinstance(value, (str, Path)):
        return value
    if isinstance(value, bool):
        raise OverrideError(f"--{name} needs a folder, e.g. --{name} runs/mine (it was given without a value)")
    if isinstance(value, int):
        return str(value)
    raise OverrideError(f"--{name}: {value!r} is not a folder name; quote it so it stays text, e.g. "
                        f"--{name}='\"{value}\"'")


def recipe_data(build: RecipeBuilder, preset: str | Preset | None = None, run_flags: bool = True,
                **overrides: Any) -> dict[str, Any]:
    """The recipe of ``build`` for ``preset`` with dotted ``overrides`` applied, as plain data."""
    recipe = Recipe.from_dict(dict(build(resolve_preset(preset))))
    if overrides:
        check_override_names(overrides, run_flags)
        recipe = recipe.override(**{k: coerce_override(k, v) for k, v in overrides.items()})
    return recipe.to_dict()


def demo_data(out_dir: str | Path = DEMO_DATA_DIR) -> Path:
    from ensemble_core.data.demo import make_demo
    return make_demo(out_dir)


def layout_demo_data(layout: str) -> Path:
    """The tiny demo data set of a data layout (``image_folder``, ``csv``) in ``runs/demo-<layout>``."""
    from ensemble_core.data.demo import make_layout_demo
    return make_layout_demo(layout, Path("runs") / f"demo-{layout}")


EXECUTOR_PARAM_PREFIX = "executor.params."


def executor_choice(executor: Any, overrides: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Split the command line's executor flags from the recipe overrides.

    ``executor`` (a name, ``{name, params}`` or None = the recipe's), ``ray_address`` and
    ``executor.params.*`` overrides become one executor reference (None: keep the recipe's executor
    and let the ``executor.*`` overrides edit it); returns it and the remaining recipe overrides.
    """
    rest = dict(overrides)
    address = rest.pop("ray_address", None)
    if isinstance(executor, bool) or not (executor is None or isinstance(executor, (str, Mapping))):
        raise OverrideError(f"--executor needs a name: local, process or ray (got {executor!r})")
    if isinstance(address, bool) or not (address is None or isinstance(address, str)):
        raise OverrideError(f"--ray_address needs a Ray cluster address, e.g. --ray_address auto or "
                            f"--ray_address HOST:6379 (got {address!r})")
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


def warn_shadowed_defaults(recipe: Mapping[str, Any]) -> None:
    """Say once (stderr) which ``defaults`` fields every task sets itself, so that they change no member."""
    for warning in shadowed_defaults(recipe):
        print(f"warning: {warning}", file=sys.stderr, flush=True)


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
    status 1; call :func:`ensemble_core.pipeline.run_recipe` to get the exception instead.
    """
    try:
        return _launch(name, build, data_dir, out_dir, preset, executor, quiet, skip_bad_files, overrides)
    except RunInterrupted as exc:  # SIGINT / SIGTERM: checkpoints are saved; say how to resume
        print(f"[{name}] {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_status) from exc
    except KeyboardInterrupt as exc:  # a second signal (or Ctrl-C outside training): stop now, no traceback
        print(f"[{name}] {stopped_at_once_message(exc, out_dir, name)}", file=sys.stderr, flush=True)
        raise SystemExit(getattr(exc, "exit_status", 130)) from None
    except (EnsembleCoreError, OSError) as exc:
        exit_with_message(exc)


def exit_with_message(exc: BaseException) -> None:
    """What a command-line entry point does with an error the user must fix: one line, exit status 1."""
    print(f"error: {error_line(exc)}", file=sys.stderr, flush=True)
    raise SystemExit(1) from exc


def stopped_at_once_message(exc: BaseException, out_dir: str | Path | None, name: str) -> str:
    out = Path(out_dir if out_dir is not None else Path("runs") / name).expanduser().resolve()
    how = f"on a second signal ({exc.signal_name})" if hasattr(exc, "signal_name") else "(KeyboardInterrupt)"
    return (f"stopped at once {how}: no new checkpoint was written; finished members and the checkpoints "
            f"saved before are kept.\nResume by running the same command again (same out_dir: {out}).")


def _launch(name: str, build: RecipeBuilder, data_dir, out_dir, preset, executor, quiet: bool,
            skip_bad_files: bool, overrides: Mapping[str, Any]) -> dict[str, Any]:
    from ensemble_core.manager import get_registry
    from ensemble_core.pipeline import run_recipe

    start = time.perf_counter()
    registry = get_registry()   # the entry point takes the process's plugin catalog and passes it down
    quiet, skip_bad_files = parse_bool("quiet", quiet), parse_bool("skip_bad_files", skip_bad_files)
    data_dir, out_dir = folder_flag("data_dir", data_dir), folder_flag("out_dir", out_dir)
    chosen = resolve_preset(preset)
    executor, overrides = executor_choice(executor, overrides)
    recipe = recipe_data(build, chosen, **overrides)
    validate(recipe, registry=registry)   # before the demo data or anything else is written
    warn_shadowed_defaults(recipe)
    warn_if_gpu_preset_on_cpu(chosen, recipe)
    data_note = None
    if data_dir is None:
        layout = normalize_ref(recipe.get("dataset") or "mask_competition")["name"]
        data_dir = demo_data() if layout == "mask_competition" else layout_demo_data(layout)
        data_note = DEMO_NOTE
        if not quiet:
            print(f"[{name}] no data_dir given: using demo data in {data_dir}", flush=True)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / name
    result = run_recipe(recipe, data_dir=data_dir, out_dir=out_dir, executor=executor, quiet=quiet,
                        skip_bad_files=skip_bad_files, preset=chosen.name, data_note=data_note, registry=registry)
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
    from ensemble_core.presets import PRESET_NAMES
    return (f"{summary}\n\nUsage: fire recipes/{name}.py run [--data_dir DIR] [--out_dir DIR (default runs/{name})]\n"
            f"        [--preset {'|'.join(PRESET_NAMES)}] [--executor local|process|ray] [--ray_address ADDR]\n"
            f"        [--decision argmax|class_offsets|prior_power|factor_offsets]\n"
            f"        [--dataset mask_competition|image_folder|csv] [--dataset.params.NAME=VALUE ...]\n"
            f"        [--quiet] [--skip_bad_files] [--FIELD.PATH=VALUE ...]\n\n"
            f"Any recipe field can be overridden with a dotted flag, e.g. --defaults.epochs=2 or\n"
            f"--tasks.0.loss=focal; `fire recipes/{name}.py recipe` prints the recipe as plain data.")


def recipe_commands(name: str, build: RecipeBuilder, summary: str) -> tuple[Callable[..., dict], Callable[..., dict]]:
    """The ``recipe`` and ``run`` functions a recipe file exposes to fire (the same for every recipe)."""

    def recipe(preset: str | None = None, **overrides: Any) -> dict:
        """The recipe as plain data (validate it with ensemble_core.recipe.validate)."""
        try:
            data = recipe_data(build, preset, run_flags=False, **overrides)
            if overrides:   # a dotted flag may name a field no recipe has (--defaults.epochz=1): refuse it
                validate(data)
                warn_shadowed_defaults(data)
            return data
        except EnsembleCoreError as exc:
            exit_with_message(exc)

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
