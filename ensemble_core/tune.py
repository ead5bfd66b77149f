"""Sweep recipe fields with Optuna: ``python -m ensemble_core tune RECIPE --space SPACE.yaml --trials N``.

``RECIPE`` is a recipe file ``recipes/<name>.py`` (its ``build(preset)``) or a YAML / JSON recipe.
The space file maps dotted recipe fields to Optuna distributions::

    defaults.epochs: {type: int, low: 2, high: 8}
    tasks.0.optimizer.params.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    voter.name: {type: categorical, choices: [soft, weighted_soft]}

Every trial is a normal run folder ``<out_dir>/trials/trial-NNNN`` (resumable, comparable with
``compare``); the objective is that run's out-of-fold macro F1 (the honest figure of its report,
never eval answers). The study lives in a database: ``sqlite:///<out_dir>/study.db`` unless
``--storage`` gives another SQLAlchemy URL (``postgresql://user:pass@host/db``: several machines
can then work on one study at once, each running the same command with the same ``--storage``,
``--study`` and an ``--out_dir`` every machine sees at the same path).

Rerunning the command continues the study until it holds ``--trials`` finished trials. A trial whose
process died (killed, out of memory) is marked failed — at once when it ran on this machine and its
process is gone, else when its heartbeat is stale — and its parameters are queued again with its
run folder, so its finished members are reused and the others resume from their checkpoints.
``--prune`` stops trials whose per-epoch validation macro F1 (per validated epoch with ``val_every``) falls
below the median of earlier trials at the same step (Optuna's MedianPruner). Results in ``<out_dir>/tune/``:
``best.json``, ``trials.csv`` and ``param_importances.png``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ensemble_core.errors import EnsembleCoreError, RecipeError
from ensemble_core.runfolder import EPOCHS_FILE, STOP_FILE, member_dir, members_dir

TRIALS_DIR = "trials"
RESULTS_DIR = "tune"
DEFAULT_DB = "study.db"
DIST_KEYS = {"int": {"type", "low", "high", "log", "step"},
             "float": {"type", "low", "high", "log", "step"},
             "categorical": {"type", "choices"}}
REF_FIELDS = ("split", "voter", "executor")          # top-level component references
HEARTBEAT_S, GRACE_S = 60, 240                       # a trial on another machine is dead after GRACE_S silent


class TuneError(EnsembleCoreError):
    """A space file, storage or study that cannot be used; raised before any trial starts."""


# ---------------------------------------------------------------- the recipe
def load_recipe(path: str | Path, preset: str | None = None) -> tuple[dict, str | None]:
    """Recipe data of a ``recipes/<name>.py`` file (``build(preset)``) or a YAML / JSON recipe; and the
    preset name used (None for data files)."""
    from ensemble_core.recipe import Recipe

    path = Path(path)
    if not path.is_file():
        raise TuneError(f"recipe {str(path)!r} does not exist; give recipes/<name>.py or a YAML / JSON recipe")
    if path.suffix == ".py":
        import importlib.util

        from ensemble_core.presets import resolve_preset
        spec = importlib.util.spec_from_file_location(f"ensemble_core_tune_recipe_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "build", None)):
            raise TuneError(f"recipe file {path}: has no build(preset) function (see recipes/full.py)")
        chosen = resolve_preset(preset)
        return Recipe.from_dict(dict(module.build(chosen)), source=str(path)).to_dict(), chosen.name
    if preset is not None:
        raise TuneError(f"--preset {preset!r} only applies to recipes/<name>.py files; {path} is plain data")
    return Recipe.load(path).to_dict(), None


# ---------------------------------------------------------------- the space
@dataclass(frozen=True)
class Dimension:
    field: str
    spec: Mapping[str, Any]

    def distribution(self):
        import optuna.distributions as D
        s = self.spec
        if s["type"] == "int":
            return D.IntDistribution(int(s["low"]), int(s["high"]), log=bool(s.get("log", False)),
                                     step=int(s.get("step", 1)))
        if s["type"] == "float":
            return D.FloatDistribution(float(s["low"]), float(s["high"]), log=bool(s.get("log", False)),
                                       step=None if s.get("step") is None else float(s["step"]))
        return D.CategoricalDistribution(list(s["choices"]))

    def sample_values(self) -> list[Any]:
        """Values that span the dimension (for checking the recipe before any trial)."""
        s = self.spec
        if s["type"] == "categorical":
            return list(s["choices"])
        cast = int if s["type"] == "int" else float
        return [cast(s["low"]), cast(s["high"])]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_space(path: str | Path) -> list[Dimension]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise TuneError(f"space file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TuneError(f"space file {path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                        f"YAML") from None
    except yaml.YAMLError as exc:
        raise TuneError(f"space file {path}: cannot parse YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, Mapping) or not data:
        raise TuneError(f"space file {path}: must map dotted recipe fields to distributions, e.g. "
                        f"'defaults.epochs: {{type: int, low: 2, high: 8}}'")
    dims = []
    for field, spec in data.items():
        where = f"space file {path}: {field}"
        if not isinstance(spec, Mapping) or spec.get("type") not in DIST_KEYS:
            raise TuneError(f"{where}: needs type int, float or categorical, got {spec!r}")
        kind = spec["type"]
        extra = sorted(set(spec) - DIST_KEYS[kind])
        if extra:
            raise TuneError(f"{where}: unknown key(s) {', '.join(extra)} for type {kind}; "
                            f"allowed: {', '.join(sorted(DIST_KEYS[kind]))}")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise TuneError(f"{where}: categorical needs a non-empty list 'choices'")
            bad = [c for c in choices if not (c is None or isinstance(c, (str, int, float, bool)))]
            if bad:
                raise TuneError(f"{where}: choices must be plain values (str, number, bool, null), got {bad[0]!r}")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not (_number(low) and _number(high)):
                raise TuneError(f"{where}: {kind} needs numbers 'low' and 'high', got low={low!r} high={high!r}")
            if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
                raise TuneError(f"{where}: int bounds must be whole numbers, got low={low!r} high={high!r}")
            if low > high:
                raise TuneError(f"{where}: low {low!r} is greater than high {high!r}; swap them")
            if spec.get("log") and low <= 0:
                raise TuneError(f"{where}: log: true needs low > 0, got low={low!r}")
            if spec.get("log") and spec.get("step") is not None and kind == "float":
                raise TuneError(f"{where}: a float dimension cannot have both log and step")
        dims.append(Dimension(str(field), dict(spec)))
    return dims


def _as_ref(value: Any) -> Any:
    from ensemble_core.recipe import normalize_ref
    return normalize_ref(value) if isinstance(value, str) else value


def apply(recipe: Mapping[str, Any], values: Mapping[str, Any]) -> dict:
    """``recipe`` with each dotted field set; raises TuneError for a field the recipe does not have.

    A member field of ``tasks.N`` that the entry inherits is copied from the defaults first, so
    ``tasks.0.optimizer.params.lr`` edits what task 0 trains with; a component given by name
    (``voter: soft``) is read as ``{name, params}`` so ``voter.name`` / ``voter.params.X`` work."""
    from ensemble_core.recipe import COMPONENT_FIELDS, MEMBER_DEFAULTS, Recipe

    data = copy.deepcopy(dict(recipe))
    for field, value in values.items():
        parts = field.split(".")
        node: Any = data
        trail: list[str] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            here = ".".join(trail + [part])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise TuneError(f"space field {field!r}: {'.'.join(trail) or 'recipe'} is a list of {len(node)}; "
                                    f"{part!r} is not an index of it")
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
                if key not in node:
                    inherits = (len(trail) == 2 and trail[0] == "tasks" and key in MEMBER_DEFAULTS)
                    if inherits:
                        node[key] = copy.deepcopy(Recipe.from_dict(data).member_fields(int(trail[1]))[key])
                    elif trail == ["defaults"] and key in MEMBER_DEFAULTS:
                        node[key] = copy.deepcopy(MEMBER_DEFAULTS[key])
                    elif key == "params" and trail and not last:
                        node[key] = {}
                    elif not (last and trail and trail[-1] == "params"):
                        raise TuneError(f"space field {field!r}: the recipe has no field {here!r}"
                                        + _valid_keys(node, trail))
                if not last and (key in COMPONENT_FIELDS or (not trail and key in REF_FIELDS)):
                    node[key] = _as_ref(node[key])
            else:
                raise TuneError(f"space field {field!r}: {'.'.join(trail)} is {node!r}, which has no field {part!r}")
            if last:
                node[key] = value
            else:
                node = node[key]
            trail.append(part)
    return data


def _valid_keys(node: Mapping, trail: list[str]) -> str:
    from ensemble_core.recipe import MEMBER_DEFAULTS
    keys = list(node)
    if trail == ["defaults"] or (len(trail) == 2 and trail[0] == "tasks"):
        keys = sorted(set(keys) | set(MEMBER_DEFAULTS))
    return f" (fields there: {', '.join(map(str, keys))})" if keys else ""


def check_space(recipe: Mapping[str, Any], dims: Sequence[Dimension]) -> None:
    """Every field exists and every value of the space gives a valid recipe (before any trial)."""
    from ensemble_core.manager import get_registry
    from ensemble_core.recipe import validate

    registry = get_registry()
    for dim in dims:
        for value in dim.sample_values():
            try:
                validate(apply(recipe, {dim.field: value}), registry=registry)
            except RecipeError as exc:
                problems = "; ".join(exc.problems)
                raise TuneError(f"space field {dim.field!r} = {value!r} makes the recipe invalid: {problems}") from exc


# ---------------------------------------------------------------- the study
def redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: say it as given
        return url


def open_storage(url: str):
    import optuna

    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except Exception as exc:  # driver missing, host unreachable, bad URL: the user's to fix
        why = " ".join(str(exc).split())[:300]
        raise TuneError(f"--storage {redact(url)!r} cannot be opened ({type(exc).__name__}: {why}); give a "
                        f"SQLAlchemy URL that this machine can reach, e.g. sqlite:////abs/path/study.db or "
                        f"postgresql://user:password@host/dbname (with its driver installed)") from exc


def json_key(data: Any) -> str:
    """A short hash of plain data (sorted keys): what a study stores to recognise its space and its base run."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def space_key(dims: Sequence[Dimension]) -> str:
    return json_key([[d.field, d.spec] for d in dims])


def _alive_here(trial) -> bool:
    if trial.user_attrs.get("host") != socket.gethostname():
        return True  # another machine: its heartbeat decides
    pid = trial.user_attrs.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(study, storage, say) -> list[int]:
    """Mark dead trials failed and queue each failed trial's parameters again with its run folder."""
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)   # other machines: stale heartbeats
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and not _alive_here(t):
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            say(f"[tune] trial {t.number} was left running by a process that is gone: marked failed")
    trials = study.get_trials(deepcopy=False)
    followed = {t.user_attrs.get("resume_of") for t in trials}
    queued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in followed and t.user_attrs.get("run_dir") and t.params:
            study.enqueue_trial(t.params, user_attrs={"resume_of": t.number, "run_dir": t.user_attrs["run_dir"]})
            queued.append(t.number)
            say(f"[tune] trial {t.number} failed before: its parameters run again in {t.user_attrs['run_dir']} "
                f"(finished members are reused, the others resume)")
    return queued


def finished(study) -> int:
    from optuna.trial import TrialState
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


# ---------------------------------------------------------------- pruning
class EpochReporter:
    """Reports each member's per-epoch validation macro F1 to the trial (step = 1000 x member index in
    plan order + epoch) and asks the run to stop when the pruner says so."""

    def __init__(self, trial, run_dir: Path, run_names: list[str], interval: float = 1.0):
        self.trial, self.run_dir, self.run_names, self.interval = trial, run_dir, run_names, interval
        self.reported: set[int] = set()
        self.pruned_at: int | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._listening = None

    def __enter__(self):
        from ensemble_core.stopping import epoch_listener
        # members in this process report synchronously after each epoch; the thread covers worker processes
        self._listening = epoch_listener(self.poll)
        self._listening.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(5)
        self._listening.__exit__(None, None, None)
        self.poll()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        with self._lock:
            self._poll()

    def _poll(self) -> None:
        if self.pruned_at is not None:
            return
        for i, name in enumerate(self.run_names):
            path = member_dir(self.run_dir, name) / EPOCHS_FILE
            if not path.is_file():
                continue
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line being written
                step = 1000 * i + int(rec.get("epoch", 0))
                if step in self.reported or not isinstance(rec.get("macro_f1"), (int, float)):
                    continue
                self.trial.report(float(rec["macro_f1"]), step)
                self.reported.add(step)
                if self.trial.should_prune():
                    self.pruned_at = step
                    self._stop()
                    return

    def _stop(self) -> None:
        from ensemble_core.stopping import request_stop, write_stop_file
        request_stop("pruned by the tuner")
        write_stop_file(members_dir(self.run_dir) / STOP_FILE, "pruned by the tuner")


# ---------------------------------------------------------------- the command
def tune(recipe_path: str | Path, space: str | Path, trials: int, out_dir: str | Path | None = None,
         storage: str | None = None, study_name: str | None = None, data_dir: str | Path | None = None,
         preset: str | None = None, executor: str | None = None, prune: bool = False, seed: int = 0,
         quiet: bool = False, pruner=None, dataset: Any = None) -> dict[str, Any]:
    """Run the study until it holds ``trials`` finished trials; returns the results (also written).

    ``prune``: MedianPruner on the per-epoch validation macro F1, or ``pruner`` (an Optuna pruner) when given."""
    try:
        import optuna
    except ImportError as exc:
        raise TuneError('tune needs Optuna: pip install -e ".[tune]"') from exc
    from ensemble_core.manager import get_registry
    from ensemble_core.pipeline import run_recipe
    from ensemble_core.recipe import Recipe, shadowed_defaults, validate_run
    from ensemble_core.stopping import RunInterrupted, clear_stop

    def say(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    if not isinstance(trials, int) or trials < 1:
        raise TuneError(f"--trials must be a positive integer, got {trials!r}")
    base, preset_name = load_recipe(recipe_path, preset)
    # the contract check of a run (every trial's components are checked by check_space below)
    validate_run(base, registry=get_registry(), source=str(recipe_path), dataset=dataset)
    for warning in shadowed_defaults(base):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if dataset is not None:   # --dataset: the data layout every trial reads (image_folder, csv, ...)
        base = {**base, "dataset": dataset}
    dims = load_space(space)
    refit_dims = [d.field for d in dims if d.field in ("refit", "refit_share")]
    if refit_dims:
        raise TuneError(f"space field {refit_dims[0]!r}: refit members vote on eval only, so they cannot change the "
                        f"out-of-fold macro F1 a study maximises; leave {refit_dims[0]} out of the space (set it "
                        f"on the final run)")
    if base.get("refit"):   # they would cost every trial compute without moving its objective
        say(f"[tune] the recipe's refit: {base['refit']} is left out of the trials (refit members do not change "
            f"the out-of-fold objective); run the best parameters with the recipe's refit for a submission")
        base = {**base, "refit": 0}
    check_space(base, dims)
    out = Path(out_dir if out_dir is not None else Path("runs") / f"tune-{base['name']}").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{out / DEFAULT_DB}"
    import warnings
    # heartbeats, fail_stale_trials and the importance plot are marked experimental by Optuna
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    store = open_storage(url)
    name = study_name or f"{base['name']}-tune"
    key = space_key(dims)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)  # replaced below once the study's history is known
    if not prune:
        pruner = optuna.pruners.NopPruner()
    elif pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = optuna.create_study(storage=store, study_name=name, direction="maximize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    old_key = study.user_attrs.get("space_key")
    if old_key is not None and old_key != key:
        raise TuneError(f"study {name!r} in {redact(url)} was started with another space "
                        f"({study.user_attrs.get('space_file')}); give a new --study name or --out_dir")
    if old_key is None:
        study.set_user_attr("space_key", key)
        study.set_user_attr("space_file", str(space))
        study.set_user_attr("space", {d.field: dict(d.spec) for d in dims})
        study.set_user_attr("recipe", base["name"])
    if data_dir is None:
        from ensemble_core.launch import DEMO_NOTE, demo_data, layout_demo_data
        from ensemble_core.registry import normalize_ref
        layout = normalize_ref(base.get("dataset") or "mask_competition")["name"]
        data_dir = demo_data() if layout == "mask_competition" else layout_demo_data(layout)
        data_note = DEMO_NOTE
        say(f"[tune] no data_dir given: using demo data in {data_dir}")
    else:
        data_note = None
    # the trials of one study must be comparable: the same base recipe (after --preset / --dataset) on the same data
    data_path = str(Path(data_dir).expanduser().resolve())
    base_key = json_key({"recipe": base, "data_dir": data_path})
    old_base = study.user_attrs.get("base_key")
    if old_base is not None and old_base != base_key:
        raise TuneError(f"study {name!r} in {redact(url)} was started with another base recipe or data (recipe "
                        f"{study.user_attrs.get('recipe_file')}, preset {study.user_attrs.get('preset')}, data "
                        f"{study.user_attrs.get('data_dir')}); its trials would not compare with this one's. Give a "
                        f"new --study name or --out_dir, or the same recipe, preset and data")
    if old_base is None:
        study.set_user_attr("base_key", base_key)
        study.set_user_attr("recipe_file", str(recipe_path))
        study.set_user_attr("preset", preset_name)
        study.set_user_attr("data_dir", data_path)
    # a rerun must not replay the draws of the first run: seed with the number of trials so far
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    recover(study, store, say)
    have = finished(study)
    say(f"[tune] study {name!r} in {redact(url)}: {have} of {trials} trial(s) finished")

    def objective(trial) -> float:
        # who runs it first: a rerun can then tell a trial whose process died
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        run_dir = Path(trial.user_attrs.get("run_dir") or out / TRIALS_DIR / f"trial-{trial.number:04d}")
        trial.set_user_attr("run_dir", str(run_dir))
        values = {d.field: _suggest(trial, d) for d in dims}
        recipe = apply(base, values)
        say(f"[tune] trial {trial.number}: {json.dumps(values)} -> {run_dir}")
        names = [m.run_name for m in Recipe.from_dict(recipe).plan()]
        clear_stop()
        reporter = EpochReporter(trial, run_dir, names) if prune else None
        try:
            if reporter is not None:
                with reporter:
                    result = run_recipe(recipe, data_dir=data_dir, out_dir=run_dir, executor=executor, quiet=quiet,
                                        preset=preset_name, data_note=data_note)
            else:
                result = run_recipe(recipe, data_dir=data_dir, out_dir=run_dir, executor=executor, quiet=quiet,
                                    preset=preset_name, data_note=data_note)
        except RunInterrupted:
            if reporter is not None and reporter.pruned_at is not None:
                clear_stop()
                (members_dir(run_dir) / STOP_FILE).unlink(missing_ok=True)
                say(f"[tune] trial {trial.number} pruned at step {reporter.pruned_at}")
                raise optuna.TrialPruned()
            raise
        f1 = result.metrics["oof"]["macro_f1"]
        if f1 is None:
            raise TuneError(f"trial {trial.number}: {run_dir} has no out-of-fold macro F1 to optimise "
                            f"(no training image was predicted out of fold); check the recipe's split")
        say(f"[tune] trial {trial.number}: out-of-fold macro F1 {f1:.4f}")
        return float(f1)

    todo = trials - have
    if todo > 0:
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState
        study.optimize(objective, n_trials=todo,
                       callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED))])
    return write_results(study, out, say)


def _suggest(trial, dim: Dimension) -> Any:
    s = dim.spec
    if s["type"] == "int":
        return trial.suggest_int(dim.field, int(s["low"]), int(s["high"]), log=bool(s.get("log", False)),
                                 step=int(s.get("step", 1)))
    if s["type"] == "float":
        return trial.suggest_float(dim.field, float(s["low"]), float(s["high"]), log=bool(s.get("log", False)),
                                   step=None if s.get("step") is None else float(s["step"]))
    return trial.suggest_categorical(dim.field, list(s["choices"]))


def write_results(study, out: Path, say) -> dict[str, Any]:
    from optuna.trial import TrialState

    from ensemble_core.atomic import atomic_write, atomic_write_json, atomic_write_text

    res = out / RESULTS_DIR
    res.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    rows = []
    for t in trials:
        rows.append({"number": t.number, "state": t.state.name, "oof_macro_f1": t.value,
                     **{f"param.{k}": v for k, v in t.params.items()},
                     "run_dir": t.user_attrs.get("run_dir"), "resume_of": t.user_attrs.get("resume_of"),
                     "seconds": None if t.duration is None else int(round(t.duration.total_seconds()))})
    import pandas as pd
    frame = pd.DataFrame(rows)
    files = {"trials": atomic_write(res / "trials.csv", lambda tmp: frame.to_csv(tmp, index=False))}
    best = None
    if complete:
        b = study.best_trial
        best = {"number": b.number, "oof_macro_f1": b.value, "params": b.params, "run_dir": b.user_attrs.get("run_dir"),
                "study": study.study_name, "finished_trials": len(complete)}
        files["best"] = atomic_write_json(res / "best.json", best)
    files["markdown"] = atomic_write_text(res / "trials.md", _trials_markdown(frame) + "\n")
    png = _importance_plot(study, res / "param_importances.png", say)
    if png is not None:
        files["importance"] = png
    say(_trials_markdown(frame))
    if best is not None:
        say(f"[tune] best: trial {best['number']}, out-of-fold macro F1 {best['oof_macro_f1']:.4f}, "
            f"params {json.dumps(best['params'])}, run folder {best['run_dir']}")
    for k, v in files.items():
        say(f"{k}: {v}")
    return {"best": best, "trials": rows, "files": files, "study": study.study_name}


def _trials_markdown(frame) -> str:
    cols = [c for c in frame.columns if c not in ("run_dir",)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else
                         str(int(v)) if isinstance(v, float) and v.is_integer() and c != "value" else
                         f"{v:.4f}" if isinstance(v, float) else str(v))   # a trial number in a float column
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _importance_plot(study, path: Path, say) -> Path | None:
    from optuna.trial import TrialState

    from ensemble_core.atomic import atomic_write
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        say("[tune] parameter importance needs 2 finished trials; no plot yet")
        return None
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_param_importances
    try:
        ax = plot_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:  # e.g. every trial drew the same values
        say(f"[tune] no parameter-importance plot: {exc}")
        return None
    fig = ax.figure
    fig.set_size_inches(8, max(3, 0.5 * len(study.best_params) + 2))
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def cli_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ensemble-core tune", description=__doc__.split("\n\n")[0],
                                     epilog="Details: README.md (Sweeps with Optuna) and ensemble_core/tune.py.")
    parser.add_argument("recipe", help="recipes/<name>.py or a YAML / JSON recipe")
    parser.add_argument("--space", required=True, help="YAML file: dotted recipe field -> distribution")
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should hold")
    parser.add_argument("--out_dir", "--out-dir", default=None, help="default runs/tune-<recipe>")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default sqlite:///<out_dir>/study.db)")
    parser.add_argument("--study", default=None, help="study name (default <recipe>-tune)")
    parser.add_argument("--data_dir", "--data-dir", default=None, help="data folder (default: the demo data)")
    parser.add_argument("--preset", default=None, help="preset for a recipes/<name>.py file (auto, seed, small)")
    parser.add_argument("--executor", default=None, choices=("local", "process", "ray"),
                        help="how each trial's members run (default: the recipe's)")
    parser.add_argument("--prune", action="store_true", help="MedianPruner on per-epoch validation macro F1")
    parser.add_argument("--dataset", default=None,
                        help="data layout replacing the recipe's: mask_competition, image_folder, csv (python -m "
                             "ensemble_core list datasets)")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampler seed (plus the number of trials already in the study, so a rerun draws anew)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from ensemble_core.stopping import RunInterrupted
    try:
        tune(args.recipe, args.space, args.trials, out_dir=args.out_dir, storage=args.storage, study_name=args.study,
             data_dir=args.data_dir, preset=args.preset, executor=args.executor, prune=args.prune, seed=args.seed,
             quiet=args.quiet, dataset=args.dataset)
    except RunInterrupted as exc:
        print(f"[tune] {exc}\nRerun the same tune command to continue the study.", file=sys.stderr, flush=True)
        return exc.exit_status
    return 0
