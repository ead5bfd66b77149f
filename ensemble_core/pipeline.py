"""Run a recipe end to end: members -> votes -> 18 classes -> ``submission.csv`` + ``metrics.json`` + ``report.md``.

    from ensemble_core.pipeline import run_recipe
    result = run_recipe(recipe_dict, data_dir="/data/mask", out_dir="runs/full")

Output folder::

    recipe.json      the resolved recipe (rerun / `ensemble` read it back)
    run.json         data folder, excluded files, preset, last run's member status
    splits.json      person-level split manifest (reused on rerun)
    data_check.json  preflight report
    members/<run_name>/  one folder per member (see docs/ARCHITECTURE.md), DONE last
    submission.csv   ImageID,ans for eval/info.csv
    decision.json    the decision rule, its fitted parameters, its cross-fitted estimate, the run it belongs to
    metrics.json, report.md, confusion.png, ensemble_eval.npz

Rerunning into the same folder skips every member whose ``DONE`` exists, so
an interrupted run resumes. ``python -m ensemble_core ensemble RUN_DIR
[--voter NAME] [--decision NAME]`` recomputes the ensemble outputs from cached
predictions without training.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ensemble_core.atomic import atomic_write_json, remove_stale_temp_files
from ensemble_core.data.layout import SKIP_FLAG
from ensemble_core.errors import DataError, EnsembleCoreError, RecipeError, TrainingError
from ensemble_core.executors import Executor, MemberJob, MemberResult
from ensemble_core.runfolder import (DATA_CHECK_FILE, DECISION_FILE, DONE_FILE, ENSEMBLE_EVAL_FILE, ERROR_FILE,
                                     RECIPE_FILE, RUN_FILE, SPLITS_FILE, SUBMISSION_FILE, member_dir, members_dir)
from ensemble_core.recipe import Member, Recipe, parse_bool, shadowed_defaults, validate_run
from ensemble_core.registry import normalize_ref
from ensemble_core.labelspace import MASK_STATUS
from ensemble_core.stopping import RunInterrupted, signal_exit_status



@dataclass
class RunResult:
    out_dir: Path
    submission: Path | None
    metrics_path: Path
    report: Path
    metrics: dict
    members: list[MemberResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def trained(self) -> int:
        return sum(r.status == "trained" for r in self.members)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.members)


def say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, flush=True)


# ---------------------------------------------------------------- run folder records
def read_run_info(out_dir: Path) -> dict:
    path = out_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise EnsembleCoreError(f"{path} is unreadable ({exc}); delete it and pass data_dir again") from exc


def write_run_info(out_dir: Path, info: Mapping[str, Any]) -> None:
    atomic_write_json(out_dir / RUN_FILE, dict(info))


def resolve_data_dir(data_dir: str | Path | None, out_dir: Path) -> Path:
    if data_dir is None:
        recorded = read_run_info(out_dir).get("data_dir")
        if not recorded:
            raise DataError(f"no data folder given and {out_dir / RUN_FILE} records none; pass data_dir "
                            f"(the folder holding train/ and eval/)")
        data_dir = recorded
    path = Path(data_dir).expanduser().resolve()
    if not path.exists():
        raise DataError(f"data folder {str(path)!r} does not exist; pass the folder holding train/ and eval/")
    return path


def load_recipe_file(out_dir: Path) -> Recipe:
    path = out_dir / RECIPE_FILE
    if not path.is_file():
        raise EnsembleCoreError(f"{path} not found: {out_dir} is not a run folder made by run_recipe "
                                f"(pass the out_dir of a recipe run)")
    return Recipe.load(path)


# ---------------------------------------------------------------- pieces
def make_executor(executor: Any, recipe: Recipe, registry) -> Executor:
    """``executor``: None (the recipe's), a name / ``{name, params}``, or an object with ``run(jobs)``."""
    if executor is not None and hasattr(executor, "run") and not isinstance(executor, (str, Mapping)):
        return executor
    ref = normalize_ref(executor if executor is not None else recipe.executor)
    spec = registry.get("executor", ref["name"], field="executor")
    defaults = {p.name: p.default for p in spec.parameters()}
    params = {k: parse_bool(f"executor.params.{k}", v) if isinstance(defaults.get(k), bool) else v
              for k, v in ref["params"].items()}   # fire leaves --executor.params.X=false a string
    return registry.build("executor", {"name": ref["name"], "params": params}, field="executor")


def duplicate_member_problems(entries: Sequence[Sequence[Member]]) -> list[str]:
    """Task entries (their planned members, :meth:`Recipe.plan_entry`) that plan identical members (same
    task, backbone, settings and split): they would share one run folder and count twice in the vote."""
    owner: dict[str, int] = {}
    problems = []
    for i, planned in enumerate(entries):
        for member in planned:
            if member.run_name in owner:
                j = owner[member.run_name]
                where = f"tasks[{i}] lists one backbone twice and" if j == i else f"tasks[{j}] and tasks[{i}]"
                problems.append(f"{where} plan the same member {member.run_name} ({member.task_name} on "
                                f"{member.backbone['name']}); give them different backbones or settings, "
                                f"or merge them")
                break
            owner[member.run_name] = i
    return problems


def plan_jobs(members: Sequence[Member], data_dir: Path, splits, out_dir: Path, exclude: Sequence[str],
              options: Mapping[str, Any], dataset: Any = None) -> list[MemberJob]:
    """One job per planned member: the typed :class:`Member`, its split's rows and its run folder."""
    jobs = []
    for member in members:
        if member.split_index >= len(splits):
            raise RecipeError([f"split: member {member.run_name} needs split {member.split_index} but the "
                               f"splitter made {len(splits)}"])
        train_rows, val_rows = splits[member.split_index]
        jobs.append(MemberJob(member=member, data_dir=str(data_dir), train_rows=np.asarray(train_rows),
                              val_rows=np.asarray(val_rows), run_dir=str(member_dir(out_dir, member.run_name)),
                              exclude=tuple(sorted(exclude)), options=dict(options),
                              dataset=None if dataset is None else normalize_ref(dataset)))
    return jobs


def check_finished_members(jobs: Sequence[MemberJob], train_df: Any) -> None:
    """A finished member is reused only for the data it was trained on: its ``config.json`` records the hash of
    its split's people, images and labels (``data_hash``), which must match what this run would give it. Other
    data, or other splits of it (a deleted ``splits.json`` remade by another splitter), is refused before
    anything is written. Members finished before the hash was recorded, or without a ``config.json``, are not
    checked."""
    from ensemble_core.data.splits import split_data_hash
    from ensemble_core.runfolder import RunFolder

    stale = []
    for job in jobs:
        if not job.is_done():
            continue
        config = RunFolder(job.run_dir).config
        if not config.is_file():   # not written by train_member (a custom executor's member): nothing to check
            continue
        try:
            recorded = json.loads(config.read_text()).get("data_hash")
        except (OSError, ValueError, AttributeError) as exc:
            raise DataError(f"{config} of finished member {job.run_name} is unreadable ({exc}); delete "
                            f"{job.run_dir} to train that member again") from None
        if recorded is not None and recorded != split_data_hash(train_df, (job.train_rows, job.val_rows)):
            stale.append(job.run_name)
    if stale:
        folder = Path(jobs[0].run_dir).parent
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        raise DataError(f"{len(stale)} finished member(s) in {folder} were trained on other data than this run "
                        f"gives them (the people, images or labels of their split changed): "
                        f"{', '.join(stale[:3])}{more}. A finished member is never reused for other data: use a "
                        f"fresh --out_dir for this data, or delete those member folders to train them again here")


def run_members(runner: Executor, jobs: list[MemberJob]) -> list[MemberResult]:
    """``runner.run(jobs)`` where the first SIGINT / SIGTERM asks the running members to save a last
    checkpoint and return (a second one stops at once); raises :class:`RunInterrupted` after a stop."""
    results, reason = run_stoppable(runner, jobs)
    stopped = [r for r in results if r.status == "stopped"]
    if reason or stopped:
        raise RunInterrupted(interrupted_message(results, jobs, reason), signal_exit_status(reason))
    return results


def run_stoppable(runner: Executor, jobs: Sequence[Any]) -> tuple[list[MemberResult], str | None]:
    """``runner.run(jobs)`` under :func:`~ensemble_core.stopping.graceful_signals`: the first SIGINT / SIGTERM asks
    the running jobs to stop (a member saves a last checkpoint) and the others not to start; a second one stops at
    once. Returns the results and the stop's reason (None: not stopped). The process's shared decoded images are
    released afterwards."""
    from ensemble_core.data.images import release_dataset_images
    from ensemble_core.stopping import clear_stop, graceful_signals, stop_reason

    clear_stop()
    try:
        with graceful_signals():
            results = runner.run(jobs)
        reason = stop_reason()
    finally:
        clear_stop()
        release_dataset_images()   # the members' shared decoded images (data layer) are not needed any more
    return results, reason


def interrupted_message(results: list[MemberResult], jobs: list[MemberJob], reason: str | None) -> str:
    out_dir = Path(jobs[0].run_dir).parent.parent if jobs else Path(".")
    finished = sum(r.status in ("trained", "skipped") for r in results)
    stopped = [r for r in results if r.status == "stopped"]
    saved = "".join(f"\n  - {r.run_name}: {r.error}" for r in stopped)
    return (f"run stopped ({reason or 'a member was stopped'}): {finished} of {len(jobs)} member(s) finished and "
            f"are kept; {len(stopped)} saved a last checkpoint{':' if stopped else '.'}{saved}\n"
            f"Resume by running the same command again (same out_dir: {out_dir}); finished members are skipped "
            f"and stopped ones continue from their checkpoint.")


def check_results(results: list[MemberResult], jobs: list[MemberJob]) -> None:
    if len(results) != len(jobs):
        raise TrainingError(f"the executor returned {len(results)} result(s) for {len(jobs)} member(s)")
    failed = [r for r in results if r.status == "failed"]
    not_run = [r for r in results if r.status == "not_run"]
    if failed and all(getattr(r, "disk_full", False) for r in failed):   # one line: the file and the fix
        others = f" ({len(failed)} members stopped on it)" if len(failed) > 1 else ""
        raise TrainingError(f"{failed[0].error}{others}")
    if failed or not_run:
        lines = "\n".join(f"  - {r.run_name}: {r.error}" + (f" (traceback: {Path(r.run_dir) / ERROR_FILE})"
                                                          if r.details else "") for r in failed)
        skipped = f"\n{len(not_run)} more member(s) were not run ({not_run[0].error})." if not_run else ""
        raise TrainingError(f"{len(failed)} of {len(jobs)} member(s) failed:\n{lines}{skipped}\nFinished members "
                            f"are kept; fix the cause and rerun with the same out_dir to resume.")


# ---------------------------------------------------------------- ensemble outputs
def write_ensemble(recipe: Recipe, members: Sequence[Member], out_dir: Path, dataset, data_dir: Path, registry,
                   voter: Any = None,
                   context: Mapping[str, Any] | None = None, decision: Any = None,
                   decision_file: str | Path | None = None) -> tuple[dict, dict[str, Path]]:
    """Vote + combine cached predictions, fit the decision on out-of-fold predictions, write submission,
    ``decision.json``, metrics and report. ``decision`` (a name or ``{name, params}``) replaces the
    recipe's; ``decision_file`` applies a ``decision.json`` fitted before on this same run instead.
    Everything is computed (and every check made) before the first file is written. Returns (metrics, paths)."""
    from ensemble_core.ensemble.assemble import build_ensemble
    from ensemble_core.ensemble.decision import decision_metrics, eval_answers, read_decision_file, run_identity
    from ensemble_core.ensemble.report import ensemble_metrics, write_outputs
    from ensemble_core.ensemble.submission import write_class_probs, write_layout_submission

    from ensemble_core.data.formats import build_layout

    layout = build_layout(registry, recipe.dataset)
    ens = build_ensemble(recipe, members, out_dir, dataset, registry, voter=voter)
    space, mask = ens.label_space, ens.label_space.name == "mask_status"
    identity = run_identity(recipe, members, ens.voter_ref)
    stored = read_decision_file(decision_file, identity) if decision_file is not None else None
    outcome = ensemble_decision(recipe, ens, dataset, registry, decision, stored,
                                None if decision_file is None else str(decision_file))
    answers = eval_answers(data_dir, ens.eval_ids) if mask else None
    metrics = ensemble_metrics(ens)
    metrics["decision"] = decision_metrics(outcome, answers, None if mask else space)
    if "eval" in metrics and outcome.eval_pred is not None:     # the classes the submission holds
        counts = np.bincount(outcome.eval_pred, minlength=space.n_classes)
        metrics["eval"]["predicted_class_counts"] = {n: int(c) for n, c in zip(space.class_names(), counts)}
    metrics["recipe"] = recipe.name
    metrics["data_dir"] = str(data_dir)
    metrics["notes"] = list(metrics.get("notes") or []) + shadowed_defaults(recipe)
    paths: dict[str, Path] = {}
    submission = None
    order = getattr(dataset, "eval_order", None)
    if ens.eval18 is not None or order:
        ids, classes, fallback = submission_rows(ens, order, outcome.eval_pred)
        if fallback is not None:
            metrics["eval_fallback"] = fallback
            metrics.setdefault("notes", []).append(
                f"{len(fallback['image_ids'])} eval image(s) could not be read and were left out "
                f"({SKIP_FLAG}); their submission rows hold the fallback class {fallback['class']} "
                f"({fallback['class_name']}), {fallback['rule']}: {', '.join(fallback['image_ids'])}")
        submission = write_layout_submission(out_dir / SUBMISSION_FILE, ids, classes, layout, space)
        if ens.eval18 is not None:
            write_class_probs(out_dir / ENSEMBLE_EVAL_FILE, ens.eval_ids, ens.eval18)
        else:   # no eval image could be read: an older file would not match this submission
            (out_dir / ENSEMBLE_EVAL_FILE).unlink(missing_ok=True)
        paths["submission"] = submission
    else:
        metrics.setdefault("notes", []).append(f"{data_dir} has no eval images: no submission written")
    paths["decision"] = atomic_write_json(out_dir / DECISION_FILE, outcome.record(identity))
    ctx = {"recipe": recipe.name, "data_dir": str(data_dir), "members": [m.to_dict() for m in members],
           "submission": submission.name if submission else None, **(context or {})}
    paths.update(write_outputs(out_dir, metrics, ctx))
    return metrics, paths


def ensemble_decision(recipe: Recipe, ens, dataset, registry, decision: Any = None,
                      stored: Mapping[str, Any] | None = None, stored_path: str | None = None):
    """The decision rule (``decision`` or the recipe's; ``stored``: a checked ``decision.json`` applied as it is)
    fitted on the ensemble's out-of-fold predictions and applied to its eval predictions, as a run makes it."""
    from ensemble_core.ensemble.decision import decide

    space, mask = ens.label_space, ens.label_space.name == "mask_status"
    persons = dataset.train.reset_index(drop=True)["person"].astype(str).to_numpy()
    n_refit = sum(len(tv.refit) for tv in ens.tasks.values())
    differs = (f"{n_refit} refit member(s) without out-of-fold predictions take {recipe.refit_share:.0%} of their "
               f"group's eval vote" if n_refit else None)
    return decide(decision if decision is not None else recipe.decision, ens.oof18, ens.truth18, persons,
                  ens.eval18, ens.eval_ids, registry=registry, stored=stored, stored_path=stored_path,
                  seed=int(recipe.seed), label_space=None if mask else space, eval_vote_differs=differs)


def submission_rows(ens, order: Sequence[str] | None,
                    eval_pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """Every eval ImageID in info.csv order with its class (``eval_pred``: the decision's classes of the
    ensemble's eval images). Images left out by ``--skip_bad_files`` (not
    decoded, so not predicted) get the fallback class: the class the ensemble predicts most often out of
    fold (the best constant guess the run's own predictions support; ties to the lower class id)."""
    class_names = (ens.label_space or MASK_STATUS).class_names

    predicted = {} if eval_pred is None else dict(zip(np.asarray(ens.eval_ids, dtype=str), eval_pred))
    ids = np.asarray(order if order else list(predicted), dtype=str)
    missing = [i for i in ids if i not in predicted]
    if not missing:
        return ids, np.array([predicted[i] for i in ids], dtype=np.int64), None
    oof = ens.oof18[ens.oof_rows]
    counts = np.bincount(oof.argmax(axis=1), minlength=ens.oof18.shape[1]) if len(oof) else \
        np.bincount(ens.truth18, minlength=ens.oof18.shape[1])
    cls = int(counts.argmax())
    rule = ("the class the ensemble predicts most often out of fold" if len(oof) else
            "the most frequent training class (no out-of-fold predictions)")
    classes = np.array([predicted.get(i, cls) for i in ids], dtype=np.int64)
    return ids, classes, {"class": cls, "class_name": class_names()[cls], "rule": rule,
                          "image_ids": [str(i) for i in missing]}


def summary_line(metrics: Mapping[str, Any]) -> str:
    oof = metrics["oof"]
    fa = oof["factor_accuracy"]
    f1 = "n/a" if oof["macro_f1"] is None else f"{oof['macro_f1']:.4f}"
    acc = "n/a" if oof["accuracy"] is None else f"{oof['accuracy']:.4f}"
    line = (f"out-of-fold ({oof['n_images']} images): macro F1 {f1}, accuracy {acc} "
            f"({', '.join(f'{k} {v:.3f}' for k, v in fa.items())})")
    d = metrics.get("decision")
    if d and d["requested"]["name"] != "argmax":
        cf = "n/a" if d["crossfit_macro_f1"] is None else f"{d['crossfit_macro_f1']:.4f}"
        outcome = ("applied" if not d["kept_argmax"] else
                   "kept arg-max (held back: refit members change the eval vote)" if d.get("held_back") else
                   "kept arg-max")
        line += (f"; decision {d['requested']['name']!r}: cross-fitted OOF macro F1 {cf} vs arg-max "
                 f"{d['argmax_macro_f1']:.4f} -> {outcome}")
    return line


# ---------------------------------------------------------------- the whole run
def run_recipe(recipe: Recipe | Mapping[str, Any], data_dir: str | Path | None = None,
               out_dir: str | Path = "runs/recipe", executor: Any = None, quiet: bool = False,
               skip_bad_files: bool = False, preset: str | None = None, data_note: str | None = None,
               registry=None, dataset: Any = None) -> RunResult:
    """Validate, check data, split, train (or skip) every member, vote, combine, write the outputs.

    ``data_dir`` may be omitted when ``out_dir`` is a previous run (its data folder is reused).
    ``executor`` replaces the recipe's: a name, ``{name, params}``, or an object with ``run(jobs)``.
    ``skip_bad_files`` leaves out images / people that fail the data check instead of stopping.
    ``preset`` and ``data_note`` only label the report. ``registry``: the components to build from (default:
    this process's plugin catalog, :func:`ensemble_core.manager.get_registry`); it is passed down explicitly.
    ``dataset`` (a name or ``{name, params}``) replaces the recipe's data layout (``--dataset``).
    """
    from ensemble_core.data.check import screen, write_check_report
    from ensemble_core.data.formats import build_layout
    from ensemble_core.labelspace import static_label_space
    from ensemble_core.data.splits import plan_splits
    from ensemble_core.ensemble.assemble import group_members
    from ensemble_core.ensemble.combine import require_coverage
    from ensemble_core.manager import get_registry
    from ensemble_core.tasks import build_task

    start = time.perf_counter()
    # ---- everything is checked before the first byte goes into out_dir: a refused run leaves it as it was
    registry = registry if registry is not None else get_registry()
    recipe = validate_run(recipe, registry=registry, dataset=dataset)
    layout = build_layout(registry, recipe.dataset)
    entries = [recipe.plan_entry(i) for i in range(len(recipe.tasks))]   # planned once, passed down as it is
    duplicates = duplicate_member_problems(entries)
    if duplicates:
        raise RecipeError(duplicates)
    members = [m for planned in entries for m in planned]
    def check_coverage(space) -> None:
        require_coverage({name: build_task(registry, ms[0].task, label_space=space)
                          for name, ms in group_members(members).items()},
                         f"recipe {recipe.name!r} tasks", label_space=space)

    space = static_label_space(layout)
    if space is not None:   # else the factors come from the data: checked once it is read
        check_coverage(space)
    runner = make_executor(executor, recipe, registry)
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise EnsembleCoreError(f"out_dir {out_dir} is a file, not a folder; pass a folder for the run's outputs")
    data_dir = resolve_data_dir(data_dir, out_dir)
    previous = read_run_info(out_dir)
    all_done = all((member_dir(out_dir, m.run_name) / DONE_FILE).is_file() for m in members)
    report = None
    if all_done and previous.get("data_dir") == str(data_dir):
        exclude = set(previous.get("exclude", []))   # nothing to train: the data check already ran
        say(quiet, f"[ensemble] all {len(members)} member(s) finished before; skipping the data check")
    else:
        say(quiet, f"[ensemble] checking data {data_dir}")
        report = layout.check(data_dir)
        exclude = screen(report, skip_bad_files, data_dir, recipe.dataset)
    dataset = layout.load(data_dir, exclude=exclude)
    if space is None or space.n_classes != dataset.label_space.n_classes:
        check_coverage(dataset.label_space)
    splits, save_splits = plan_splits(dataset.train, recipe.split, recipe.seed, out_dir / SPLITS_FILE,
                                      registry=registry, refit=recipe.n_refit())
    made = len(splits) - recipe.n_refit()
    if recipe.n_refit() and made != recipe.n_splits():   # refit members take the split indices after n_splits
        raise RecipeError([f"split: the splitter made {made} person split(s) but the recipe plans "
                           f"{recipe.n_splits()} (split.params.n_splits); refit members need the two to agree. "
                           f"Set n_splits to the number of splits {normalize_ref(recipe.split)['name']!r} makes"])
    jobs = plan_jobs(members, data_dir, splits, out_dir, exclude, {"quiet": quiet},
                     dataset=None if layout.name == "mask_competition" else recipe.dataset)
    check_finished_members(jobs, dataset.train)
    preflight = getattr(runner, "preflight", None)   # an executor that can check its cluster before any write
    if callable(preflight) and any(not j.is_done() for j in jobs):
        preflight()

    # ---- checks passed: write
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    remove_stale_temp_files(members_dir(out_dir), recursive=True)
    if not (out_dir / RECIPE_FILE).is_file():
        recipe.save(out_dir / RECIPE_FILE)   # a new folder; a finished one keeps its recipe until this run ends
    if report is not None:
        write_check_report(report, out_dir / DATA_CHECK_FILE, sorted(exclude))
        if exclude:
            say(quiet, f"[ensemble] leaving out {len(exclude)} bad file(s)/folder(s) ({SKIP_FLAG}); see "
                       f"{out_dir / DATA_CHECK_FILE}")
    info = {"data_dir": str(data_dir), "exclude": sorted(exclude), "preset": preset, "data_note": data_note,
            "recipe": recipe.name, "eval_skipped": list(dataset.eval_skipped), "eval_fallback": None}
    write_run_info(out_dir, {**previous, **info})
    save_splits()

    todo = sum(not j.is_done() for j in jobs)
    say(quiet, f"[ensemble] {len(jobs)} member(s): {len(jobs) - todo} finished before, {todo} to train")
    results = run_members(runner, jobs)
    check_results(results, jobs)
    recipe.save(out_dir / RECIPE_FILE)   # every member of this recipe is finished: it is the folder's recipe now
    for r in results:
        if r.status == "trained":
            say(quiet, f"[ensemble]   trained {r.run_name} in {r.seconds:.1f}s")
    status = (f"{sum(r.status == 'trained' for r in results)} trained, "
              f"{sum(r.status == 'skipped' for r in results)} reused from cache")
    write_run_info(out_dir, {**previous, **info, "members": {r.run_name: r.status for r in results}})

    metrics, paths = write_ensemble(recipe, members, out_dir, dataset, data_dir, registry,
                                    context={"preset": preset, "data_note": data_note, "member_status": status})
    if metrics.get("eval_fallback"):
        write_run_info(out_dir, {**previous, **info, "members": {r.run_name: r.status for r in results},
                                 "eval_fallback": metrics["eval_fallback"]})
    seconds = time.perf_counter() - start
    # wall time of every run command into this folder, summed (`compare` shows it)
    write_run_info(out_dir, {**read_run_info(out_dir),
                             "wall_seconds": round(float(previous.get("wall_seconds") or 0.0) + seconds, 1)})
    say(quiet, f"[ensemble] {summary_line(metrics)}")
    return RunResult(out_dir, paths.get("submission"), paths["metrics"], paths["report"], metrics, results, seconds)


# ---------------------------------------------------------------- `python -m ensemble_core ensemble`
def recompute(run_dir: str | Path, voter: Any = None, data_dir: str | Path | None = None,
              quiet: bool = False, decision: Any = None,
              decision_file: str | Path | None = None, registry=None, dataset: Any = None) -> tuple[dict, dict[str, Path]]:
    """Rebuild the ensemble outputs of a finished run from its cached member predictions (no training).
    ``dataset`` replaces the data layout recorded in the run's recipe (a run made before the field existed
    reads the mask competition's)."""
    from ensemble_core.data.formats import build_layout
    from ensemble_core.manager import get_registry

    registry = registry if registry is not None else get_registry()
    out_dir = Path(run_dir).expanduser().resolve()
    recipe = load_recipe_file(out_dir)
    # the contract check of a run, on the components this command builds (--voter, --decision), before any write
    validate_run(recipe, registry=registry, source=str(out_dir / RECIPE_FILE), voter=voter, decision=decision,
                 dataset=dataset)
    if dataset is not None:   # the run's recipe keeps its voter and decision: decision.json identifies the run by it
        recipe = Recipe.from_dict({**recipe.to_dict(), "dataset": dataset})
    info = read_run_info(out_dir)
    data_dir = resolve_data_dir(data_dir, out_dir)
    dataset = build_layout(registry, recipe.dataset).load(data_dir, exclude=info.get("exclude", []))
    metrics, paths = write_ensemble(recipe, recipe.plan(), out_dir, dataset, data_dir,
                                    registry, voter=voter, decision=decision,
                                    decision_file=decision_file,
                                    context={"preset": info.get("preset"), "data_note": info.get("data_note"),
                                             "member_status": "all from cache (`ensemble` command)"})
    if info.get("eval_fallback") != metrics.get("eval_fallback"):   # another voter may pick another class
        write_run_info(out_dir, {**info, "eval_fallback": metrics.get("eval_fallback")})
    say(quiet, summary_line(metrics))
    return metrics, paths


def params_flag(parser: argparse.ArgumentParser, flag: str, params_json: str | None) -> dict:
    """The JSON object of a ``--<flag>-params`` option (``{}`` when not given); anything else is a usage error."""
    try:
        params = json.loads(params_json) if params_json else {}
    except ValueError as exc:
        parser.error(f"--{flag}-params is not JSON: {exc}")
    if not isinstance(params, dict):
        parser.error(f"--{flag}-params must be a JSON object, got {params_json}")
    return params


def cli_ref(parser: argparse.ArgumentParser, kind: str, name: str | None, params_json: str | None,
            run_dir: str) -> dict | None:
    """``--voter`` / ``--decision`` with its ``--*-params`` JSON as a checked ``{name, params}`` (None: neither
    given, the run's own is used); the name defaults to the run's recipe."""
    if not name and not params_json:
        return None
    params = params_flag(parser, kind, params_json)
    name = name or normalize_ref(getattr(load_recipe_file(Path(run_dir)), kind))["name"]
    from ensemble_core.manager import get_registry
    problems = get_registry().get(kind, name, field=f"--{kind}").bind(params)
    if problems:
        raise RecipeError([f"--{kind}-params: {p}" for p in problems])
    return {"name": name, "params": params}


def cli_ensemble(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ensemble-core ensemble",
                                     description="Recompute the ensemble, submission.csv, metrics.json and report.md "
                                                 "of a run folder from its cached member predictions (no training).")
    parser.add_argument("run_dir", help="out_dir of a recipe run (holds recipe.json and members/)")
    parser.add_argument("--voter", help="voter name replacing the recipe's (python -m ensemble_core list voters)")
    parser.add_argument("--voter-params", default=None,
                        help='JSON object of voter parameters, e.g. \'{"weights": [2, 1, 1]}\'')
    parser.add_argument("--decision", default=None,
                        help="decision rule replacing the recipe's (python -m ensemble_core list decisions), fitted "
                             "on the out-of-fold predictions: argmax, class_offsets, prior_power, factor_offsets")
    parser.add_argument("--decision-params", default=None,
                        help='JSON object of decision parameters, e.g. \'{"force": true}\'')
    parser.add_argument("--decision-file", default=None,
                        help="apply the fitted parameters of a decision.json of this run instead of fitting")
    parser.add_argument("--data-dir", default=None, help="data folder (default: the one the run used)")
    parser.add_argument("--dataset", default=None,
                        help="data layout (python -m ensemble_core list datasets; default: the run's recipe's)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.decision_file and (args.decision or args.decision_params):
        parser.error("--decision-file applies a fitted decision as it is; drop --decision / --decision-params")
    voter = cli_ref(parser, "voter", args.voter, args.voter_params, args.run_dir)
    decision = cli_ref(parser, "decision", args.decision, args.decision_params, args.run_dir)
    metrics, paths = recompute(args.run_dir, voter=voter, data_dir=args.data_dir, quiet=args.quiet,
                               decision=decision, decision_file=args.decision_file, dataset=args.dataset)
    if not args.quiet:
        for key in ("submission", "decision", "metrics", "report"):
            if key in paths:
                print(f"{key}: {paths[key]}")
    return 0
