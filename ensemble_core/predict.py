"""Predict with a finished ensemble, and carry one: ``python -m ensemble_core predict`` / ``export``.

    python -m ensemble_core predict RUN_DIR IMAGES [--out OUT] [--dataset NAME] [--executor process|ray]
    python -m ensemble_core export RUN_DIR OUT          # one self-contained folder that predict accepts

``predict`` loads every member of a finished run (or of an exported ensemble) from its own weights
(``torch.load(weights_only=True)`` / safetensors), predicts IMAGES with the member's recorded preprocessing,
image size, precision and TTA views (:mod:`ensemble_core.train.inference`, the code that wrote its ``eval.npz``),
refits the run's voter on the members' out-of-fold predictions exactly as the run did, blends refit members at
the run's ``refit_share``, applies the run's ``decision.json`` as it is (fitted parameters and temperature) and
writes ``submission.csv`` (the data layout's format), ``probabilities.npz``, ``predict.json`` and ``report.md``
into OUT. Nothing in RUN_DIR is written. Predicting the run's own eval images gives its ``submission.csv``, byte
for byte.

Everything is checked before any member predicts: every planned member finished (``DONE``), its ``config.json``
of this member, its weights readable and fitting its architecture, the run's ``decision.json`` fitted on this
recipe, the label space of ``--dataset`` the run's, every image readable (``--skip_bad_files`` gives unreadable
ones the fallback class, as ``run`` does). A refusal is one line naming the member or file and the fix.

An export (``ensemble.json`` + ``recipe.json`` + ``decision.json`` + ``train_labels.npz`` + per member
``config.json``, ``oof.npz``, ``weights.safetensors``) needs neither the training images nor the run's history;
``train_labels.npz`` (ids, groups and labels of the training table, no paths or pixels) and the out-of-fold
predictions are what the voters are fitted on again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ensemble_core.atomic import (atomic_write_bytes, atomic_write_json, atomic_write_npz, atomic_write_text,
                                  file_sha256, remove_stale_temp_files)
from ensemble_core.errors import DataError, EnsembleCoreError
from ensemble_core.recipe import Member, Recipe, validate_run
from ensemble_core.registry import normalize_ref, without_weights
from ensemble_core.runfolder import (CONFIG_FILE, DECISION_FILE, DONE_FILE, EXPORT_FILE, MEMBERS_DIR, OOF_FILE,
                                     PREDICT_INFO_FILE, PREDICT_PROBS_FILE, PREDICT_WORK_DIR, RECIPE_FILE,
                                     REPORT_FILE, SUBMISSION_FILE, TRAIN_LABELS_FILE, WEIGHTS_FILE, RunFolder,
                                     member_dir)

EXPORT_FORMAT = "ensemble_core export"
EXPORT_VERSION = 1


class PredictError(EnsembleCoreError):
    """A finished ensemble or a set of images that ``predict`` / ``export`` refuses (named, with the fix)."""


def _names(items: Sequence[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _read_json(path: Path, what: str, fix: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PredictError(f"{path} not found ({what}); {fix}") from None
    except (OSError, ValueError) as exc:
        raise PredictError(f"{path} is unreadable ({what}: {exc}); {fix}") from None


# ---------------------------------------------------------------- a finished ensemble: a run folder or an export
@dataclass
class Finished:
    """A finished ensemble, checked: what predicting with it needs, read from a run folder or an export."""

    root: Path
    exported: bool
    recipe: Recipe
    members: list[Member]
    configs: dict[str, dict]          # run_name -> the member's config.json
    weights: dict[str, Path]          # run_name -> best.pt (a run) / weights.safetensors (an export)
    label_space: Any
    train: pd.DataFrame               # the training table the voters are fitted on (no image paths)
    decision: dict                    # decision.json, fitted on this recipe and voter
    voter: dict                       # the voter the run's outputs were last written with (decision.json)
    info: dict = field(default_factory=dict)   # preset, data_note, data_dir (run.json / the manifest)

    @property
    def decision_path(self) -> Path:
        return self.root / DECISION_FILE


def train_labels_arrays(train: pd.DataFrame) -> dict[str, np.ndarray]:
    """The training table as plain arrays for ``train_labels.npz``: every column but ``path``, numbers as they are,
    anything else as strings (loads with ``allow_pickle=False``)."""
    table = train.drop(columns=[c for c in ("path",) if c in train.columns]).reset_index(drop=True)
    arrays = {"columns": np.asarray(list(table.columns), dtype=str)}
    for c in table.columns:
        values = table[c].to_numpy()
        arrays[f"col:{c}"] = values if values.dtype.kind in "biuf" else values.astype(str)
    return arrays


def read_train_labels(path: Path) -> pd.DataFrame:
    try:
        with np.load(path, allow_pickle=False) as data:
            return pd.DataFrame({str(c): data[f"col:{c}"] for c in data["columns"]})
    except Exception as exc:  # noqa: BLE001 - a missing, damaged or foreign file
        raise PredictError(f"{path} is unreadable ({type(exc).__name__}: {exc}); export the run again") from None


def open_finished(path: str | Path, registry, data_dir: str | Path | None = None,
                  check_weights: bool = True) -> Finished:
    """Read and check a finished run folder or an exported ensemble (see the module doc); nothing is written.
    ``data_dir`` replaces a run's recorded data folder (its training labels are read there; no images are)."""
    from ensemble_core.data.formats import build_layout

    root = Path(path).expanduser().resolve()
    exported = (root / EXPORT_FILE).is_file()
    if not exported and not (root / RECIPE_FILE).is_file():
        raise PredictError(f"{root} is neither a finished run folder (recipe.json, members/) nor an exported "
                           f"ensemble (ensemble.json); pass the --out_dir of a finished run, or a folder `python -m "
                           f"ensemble_core export` wrote")
    manifest = _read_json(root / EXPORT_FILE, "the export's manifest", "export the run again") if exported else {}
    if exported:
        check_manifest(root, manifest)
    recipe = Recipe.load(root / RECIPE_FILE)
    validate_run(architecture_recipe(recipe), registry=registry, source=str(root / RECIPE_FILE))
    members = recipe.plan()
    unfinished = [m.run_name for m in members if not (member_dir(root, m.run_name) / DONE_FILE).is_file()]
    if unfinished:
        raise PredictError(f"{len(unfinished)} of {len(members)} member(s) of {root} are not finished "
                           f"({_names(unfinished)}); finish the run first (the same recipe command with --out_dir "
                           f"{root} resumes it), then predict")
    layout = build_layout(registry, recipe.dataset)
    if exported:
        from ensemble_core.labelspace import space_from_record
        space = layout.label_space or space_from_record(manifest["label_space"])
        train = read_train_labels(root / TRAIN_LABELS_FILE)
        info = dict(manifest.get("run") or {})
    else:
        from ensemble_core.pipeline import read_run_info, resolve_data_dir
        info = read_run_info(root)
        try:
            data = resolve_data_dir(data_dir, root)
            dataset = layout.load(data, exclude=info.get("exclude", []))
        except DataError as exc:
            raise PredictError(f"{exc}. Predicting from a run folder reads the run's training labels (no images) "
                               f"from its data folder: pass it with --data_dir, or predict from an export "
                               f"(`python -m ensemble_core export {root} OUT` where the data is)") from None
        space, train = dataset.label_space, dataset.train.drop(columns=["path"])
        info = {"data_dir": str(data), **{k: info.get(k) for k in ("preset", "data_note", "wall_seconds")}}
    configs = {m.run_name: check_member_config(root, m, registry, space) for m in members}
    decision, voter = check_decision(root, recipe, members)
    if voter != normalize_ref(recipe.voter):    # the run's outputs were last written with another voter
        validate_run(architecture_recipe(recipe), registry=registry, source=str(root / DECISION_FILE), voter=voter)
    weights = {m.run_name: member_weights(root, m, exported) for m in members}
    if check_weights:
        from ensemble_core.train.inference import load_member_model, read_member_weights
        for m in members:
            load_member_model(m, read_member_weights(weights[m.run_name], m.run_name), registry, space)
    return Finished(root, exported, recipe, members, configs, weights, space, train.reset_index(drop=True),
                    decision, voter, info)


def architecture_recipe(recipe: Recipe) -> dict:
    """``recipe`` as a finished run is checked before it predicts: every backbone without its weight-loading
    parameters (:func:`registry.without_weights`). Its members get their own trained weights, so a machine
    without the pretrained weights' package, file or network predicts; the members' names are the recipe's own."""
    data = recipe.to_dict()

    def strip(ref):
        try:
            return without_weights(ref)
        except (TypeError, KeyError, ValueError):
            return ref    # malformed: validate_run names it

    entries = [data.get("defaults")] + list(data.get("tasks") or [])
    for entry in (e for e in entries if isinstance(e, dict)):
        if entry.get("backbone") is not None:
            entry["backbone"] = strip(entry["backbone"])
        if isinstance(entry.get("backbones"), list):
            entry["backbones"] = [strip(b) for b in entry["backbones"]]
    return data


def member_weights(root: Path, member: Member, exported: bool) -> Path:
    """The weights a finished member predicted its ``eval.npz`` with: an export's ``weights.safetensors``; a run's
    ``best.pt``, or ``last.pt`` when no epoch ever improved (``best_epoch`` -1 in ``summary.json``, as the trainer
    chose). A ``best.pt`` that is gone is refused: ``last.pt`` would give other predictions than the run's."""
    folder = RunFolder(member_dir(root, member.run_name))
    if exported:
        return folder.exported_weights
    if folder.best.is_file():
        return folder.best
    try:
        never_improved = int(folder.read_summary().get("best_epoch", 0)) < 0
    except (OSError, ValueError, TypeError):
        never_improved = False
    if never_improved and folder.last.is_file():
        return folder.last
    raise PredictError(f"member {member.run_name}: its weights {folder.best} are missing; train it again (delete "
                       f"{folder.path} and rerun the recipe command with --out_dir {root})")


def check_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    """An export's manifest is ours, of a version this release reads, and every file it lists is there with its
    recorded sha256 (a copy cut short or a changed file is named)."""
    if manifest.get("format") != EXPORT_FORMAT or not isinstance(manifest.get("files"), Mapping):
        raise PredictError(f"{root / EXPORT_FILE} is not an ensemble_core export manifest; export the run again")
    if int(manifest.get("version", 0)) > EXPORT_VERSION:
        raise PredictError(f"{root} is an export of format version {manifest.get('version')}, newer than this "
                           f"ensemble_core reads ({EXPORT_VERSION}); upgrade ensemble_core")
    for rel, digest in manifest["files"].items():
        path = root / rel
        if not path.is_file():
            raise PredictError(f"{path} is missing from the export (listed in {EXPORT_FILE}); copy the whole "
                               f"folder, or export the run again")
        if file_sha256(path) != digest:
            raise PredictError(f"{path} differs from the file exported (sha256 in {EXPORT_FILE}): it is damaged or "
                               f"was changed; copy the folder again, or export the run again")


def check_member_config(root: Path, member: Member, registry, space) -> dict:
    """The member's ``config.json``: of this very member (its config hash) and of the run's label space (its
    task's classes)."""
    from ensemble_core.train.components import build_task
    from ensemble_core.train.predict import original_class_names

    path = RunFolder(member_dir(root, member.run_name)).config
    config = _read_json(path, f"member {member.run_name}'s config",
                        f"train member {member.run_name} again (delete its folder and rerun the recipe)")
    if config.get("config_hash") not in (None, member.config_hash()):
        raise PredictError(f"member {member.run_name}: {path} belongs to member config {config.get('config_hash')!r}, "
                           f"not this run's {member.config_hash()!r}; train it again (delete its folder and rerun)")
    classes = original_class_names(build_task(member, registry, space))
    if config.get("classes") is not None and list(config["classes"]) != list(classes):
        raise PredictError(f"member {member.run_name} was trained on the classes {config['classes']} but the run's "
                           f"label space {space.name!r} gives its task {classes}: another label space; predict with "
                           f"the data layout and labels the run was trained on")
    return config


def check_decision(root: Path, recipe: Recipe, members: Sequence[Member]) -> tuple[dict, dict]:
    """The run's ``decision.json`` (written with its last outputs), checked to be of this recipe, voter and members;
    returns it and that voter."""
    from ensemble_core.ensemble.decision import read_decision_file, run_identity

    path = root / DECISION_FILE
    data = _read_json(path, "the run's decision rule", f"write it with `python -m ensemble_core ensemble {root}`")
    voter = normalize_ref(((data.get("run") or {}).get("voter")) or recipe.voter)
    identity = run_identity(recipe, members, voter)
    stored = read_decision_file(path, identity)
    if sorted((stored.get("run") or {}).get("members") or identity["members"]) != identity["members"]:
        raise PredictError(f"{path} was fitted on other members than the recipe plans; write it again with "
                           f"`python -m ensemble_core ensemble {root}`")
    return stored, voter


def check_label_space(layout, space) -> None:
    """``--dataset`` must read into the run's label space: its classes (when it declares them) or its factors."""
    from ensemble_core.labelspace import static_label_space

    declared = getattr(layout, "label_space", None)
    if declared is not None and list(declared.class_names()) != list(space.class_names()):
        raise PredictError(f"data layout {layout.name!r} has the label space {declared.name!r} "
                           f"({declared.n_classes} classes: {_names(declared.class_names())}), but the ensemble "
                           f"predicts {space.name!r} ({space.n_classes} classes: {_names(space.class_names())}); "
                           f"leave --dataset out (the run's layout) or pass a layout of the same classes")
    given = static_label_space(layout)
    if given is not None and tuple(given.factor_names) != tuple(space.factor_names):
        raise PredictError(f"data layout {layout.name!r} has the factors {', '.join(given.factor_names)}, but the "
                           f"ensemble predicts {', '.join(space.factor_names)}; leave --dataset out or pass a "
                           f"layout with the run's factors")


# ---------------------------------------------------------------- predict
def output_folder(out: str | Path | None, root: Path, default_name: str) -> Path:
    """Where a command writes: never inside the finished ensemble (nothing there changes), never a file."""
    out = Path(out if out is not None else root.parent / default_name).expanduser().resolve()
    if out == root or root in out.parents:
        raise PredictError(f"output folder {out} is inside {root}, which is never written; choose a folder "
                           f"outside it (--out)")
    if out.exists() and not out.is_dir():
        raise PredictError(f"output folder {out} is a file; choose a folder (--out)")
    return out


def bad_images(table: pd.DataFrame) -> dict[str, str]:
    """image_id -> why, for the images that cannot be read (missing, empty, truncated, not decodable)."""
    from ensemble_core.data.check import image_problems

    problems = image_problems(table["path"].tolist(), decode=True)
    return {i: why for i, why in zip(table["image_id"], problems) if why}


def predict(source: str | Path, images: str | Path, out: str | Path | None = None, dataset: Any = None,
            executor: Any = None, skip_bad_files: bool = False, device: str | None = None,
            threads: int | None = None, data_dir: str | Path | None = None, quiet: bool = False,
            registry=None) -> dict:
    """Predict ``images`` with the finished ensemble at ``source`` (a run folder or an export) into ``out``; returns
    what ``predict.json`` holds. ``dataset`` (a name or ``{name, params}``) replaces the recipe's data layout for
    reading the images and writing the submission; ``executor`` (default ``local``) spreads the members like
    training; ``threads`` replaces the members' own torch thread count (faster, but not byte-identical)."""
    from ensemble_core.data.formats import build_layout
    from ensemble_core.data.layout import Dataset
    from ensemble_core.data.to_predict import images_to_predict
    from ensemble_core.manager import get_registry
    from ensemble_core.pipeline import make_executor, say

    start = time.perf_counter()
    registry = registry if registry is not None else get_registry()
    # ---- every check before any member predicts or anything is written
    fin = open_finished(source, registry, data_dir)
    layout = build_layout(registry, dataset if dataset is not None else fin.recipe.dataset)
    check_label_space(layout, fin.label_space)
    found = images_to_predict(images, layout)
    table = found.table
    bad = bad_images(table)
    if bad and not skip_bad_files:
        shown = _names([f"{i} ({why.split(';')[0]})" for i, why in bad.items()])
        raise PredictError(f"{len(bad)} of {len(table)} image(s) of {found.source} cannot be read: {shown}; replace "
                           f"them, or pass --skip_bad_files to give them the fallback class in submission.csv")
    good = table[~table["image_id"].isin(list(bad))].reset_index(drop=True)
    out = output_folder(out, fin.root, f"{fin.root.name}-predict")
    runner = make_executor(executor if executor is not None else "local", fin.recipe, registry)

    # ---- predict: each member in one pass over the images, into a scratch folder of out
    say(quiet, f"[predict] {len(fin.members)} member(s) of {fin.root} on {found.source}"
               + (f"; {len(bad)} unreadable image(s) get the fallback class" if bad else ""))
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)
    for name in (SUBMISSION_FILE, PREDICT_PROBS_FILE, PREDICT_INFO_FILE, REPORT_FILE):   # an earlier prediction's
        (out / name).unlink(missing_ok=True)     # results never pass for this one's if it stops half way
    work = out / PREDICT_WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    members, member_seconds = run_predictions(fin, good, work, runner, device, threads, quiet)

    # ---- vote, combine and decide exactly as the run did; then write, submission.csv last
    ds = Dataset(train=fin.train, eval=good if len(good) else None, root=fin.root, source="predict",
                 eval_skipped=list(bad), eval_order=table["image_id"].astype(str).tolist(),
                 label_space=fin.label_space)
    record = assemble(fin, ds, work if len(good) else None, registry, layout, out)
    shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - start
    record.update({"source": str(fin.root), "exported": fin.exported, "recipe": fin.recipe.name,
                   "images": found.source, "n_images": len(table), "n_predicted": len(good),
                   "unreadable": bad, "members": members, "executor": repr(runner),
                   "member_seconds": member_seconds, "seconds": seconds,
                   "images_per_s": len(table) / max(seconds, 1e-9),
                   "trained": {k: fin.info.get(k) for k in ("data_dir", "preset", "data_note", "wall_seconds")},
                   "out": str(out)})
    ids, classes = np.asarray(record.pop("_ids"), dtype=str), np.asarray(record.pop("_classes"), dtype=np.int64)
    atomic_write_json(out / PREDICT_INFO_FILE, record)
    atomic_write_text(out / REPORT_FILE, render_report(record))
    from ensemble_core.ensemble.submission import write_layout_submission
    write_layout_submission(out / SUBMISSION_FILE, ids, classes, layout, fin.label_space)
    say(quiet, f"[predict] {len(table)} image(s) in {seconds:.1f}s ({record['images_per_s']:.1f} images/s): "
               f"{out / SUBMISSION_FILE}")
    return record


def run_predictions(fin: Finished, good: pd.DataFrame, work: Path, runner, device, threads,
                    quiet: bool) -> tuple[list[dict], float]:
    """Every member's predictions of ``good`` into ``work/members/<run_name>/eval.npz`` through ``runner`` (SIGINT /
    SIGTERM: the members not started are not run, and the command stops saying so)."""
    from ensemble_core.executors import PredictJob
    from ensemble_core.labelspace import space_record
    from ensemble_core.pipeline import run_stoppable
    from ensemble_core.runfolder import SUMMARY_FILE
    from ensemble_core.stopping import RunInterrupted, signal_exit_status

    if not len(good):
        return [], 0.0
    ids, paths = tuple(good["image_id"].astype(str)), tuple(good["path"].astype(str))
    record = space_record(fin.label_space)
    jobs = [PredictJob(member=m, weights=str(fin.weights[m.run_name]), image_ids=ids, paths=paths,
                       run_dir=str(member_dir(work, m.run_name)), label_space=record,
                       inputs=fin.configs[m.run_name].get("inputs"),
                       options={"device": device, "threads": threads, "quiet": quiet})
            for m in fin.members]
    start = time.perf_counter()
    results, reason = run_stoppable(runner, jobs)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        traceback = [r.run_name for r in failed if r.details]
        raise PredictError(f"{len(failed)} of {len(jobs)} member(s) failed to predict: "
                           + "; ".join(f"{r.run_name}: {r.error}" for r in failed)
                           + (f" (traceback: {member_dir(work, traceback[0]) / 'error.log'})" if traceback else ""))
    if reason or any(r.status in ("stopped", "not_run") for r in results):
        raise RunInterrupted(f"predict stopped ({reason or 'a member was not run'}); submission.csv was not "
                             f"written. Run the same command again", signal_exit_status(reason))
    members = []
    for m in fin.members:
        summary = json.loads((member_dir(work, m.run_name) / SUMMARY_FILE).read_text())
        members.append({"run_name": m.run_name, "task": m.task_name, "backbone": m.backbone["name"],
                        "image_size": list(m.eval_image_size or m.image_size), "refit": bool(m.refit),
                        **{k: summary[k] for k in ("views", "seconds", "images_per_s", "device", "threads")}})
    return members, time.perf_counter() - start


def assemble(fin: Finished, ds, eval_from: Path | None, registry, layout, out: Path) -> dict:
    """Vote, combine and decide as the run did; writes ``probabilities.npz``; returns the record (with the
    submission's rows under ``_ids`` / ``_classes``)."""
    from ensemble_core.ensemble.assemble import build_ensemble
    from ensemble_core.ensemble.submission import write_class_probs
    from ensemble_core.pipeline import ensemble_decision, submission_rows

    ens = build_ensemble(fin.recipe, fin.members, fin.root, ds, registry, voter=fin.voter, eval_from=eval_from)
    outcome = ensemble_decision(fin.recipe, ens, ds, registry, stored=fin.decision, stored_path=str(fin.decision_path))
    ids, classes, fallback = submission_rows(ens, ds.eval_order, outcome.eval_pred)
    space = fin.label_space
    if ens.eval18 is not None:
        write_class_probs(out / PREDICT_PROBS_FILE, ens.eval_ids, ens.eval18, space.class_names())
    else:
        (out / PREDICT_PROBS_FILE).unlink(missing_ok=True)
    counts = np.bincount(classes, minlength=space.n_classes)
    return {"voter": ens.voter_ref, "refit_share": fin.recipe.refit_share,
            "decision": {"requested": outcome.requested, "applied": outcome.applied, "reason": outcome.reason,
                         "temperature": outcome.temperature},
            "fallback": fallback, "label_space": space.name,
            "predicted_class_counts": {n: int(c) for n, c in zip(space.class_names(), counts)},
            "_ids": ids.tolist(), "_classes": classes.tolist()}


def render_report(r: Mapping[str, Any]) -> str:
    """``report.md`` of a prediction: what was predicted with what, how fast, and what came out."""
    d = r["decision"]
    lines = [f"# Prediction — recipe `{r['recipe']}`", "",
             f"- ensemble: `{r['source']}`" + (" (exported)" if r["exported"] else ""),
             f"- images: {r['images']}; {r['n_predicted']} predicted"
             + (f", {len(r['unreadable'])} unreadable (fallback class)" if r["unreadable"] else ""),
             f"- voter: `{r['voter']['name']}`" + (f" {r['voter']['params']}" if r['voter']['params'] else "")
             + (f"; refit members take {r['refit_share']:g} of their group's vote"
                if any(m["refit"] for m in r["members"]) else ""),
             f"- decision: `{d['applied']}` (requested `{d['requested']['name']}`; {d['reason']})",
             f"- wall time {r['seconds']:.1f} s, {r['images_per_s']:.1f} images/s "
             f"(members {r['member_seconds']:.1f} s; {r['executor']})", "",
             "| member | task | backbone | image | views | seconds | images/s | device |",
             "|---|---|---|---|---:|---:|---:|---|"]
    for m in r["members"]:
        lines.append(f"| `{m['run_name']}` | {m['task']} | {m['backbone']} | {m['image_size'][0]}x{m['image_size'][1]} "
                     f"| {m['views']} | {m['seconds']:.1f} | {m['images_per_s']:.1f} | {m['device']} |")
    if r.get("fallback"):
        f = r["fallback"]
        lines += ["", f"{len(f['image_ids'])} unreadable image(s) hold the fallback class {f['class']} "
                      f"({f['class_name']}), {f['rule']}: {_names(f['image_ids'], 10)}"]
    lines += ["", "## Predicted classes", "", "| class | images |", "|---|---:|"]
    lines += [f"| {name} | {n} |" for name, n in r["predicted_class_counts"].items() if n]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- export
def export(source: str | Path, out: str | Path, data_dir: str | Path | None = None, quiet: bool = False,
           registry=None) -> Path:
    """Write the finished run at ``source`` as one self-contained folder ``out`` (see the module doc), built in a
    temporary folder beside it and renamed into place when complete. ``out`` must not exist (or be empty)."""
    import torch
    from safetensors.torch import save as save_safetensors

    from ensemble_core import __version__
    from ensemble_core.labelspace import space_record
    from ensemble_core.manager import get_registry
    from ensemble_core.pipeline import say
    from ensemble_core.train.inference import read_member_weights

    registry = registry if registry is not None else get_registry()
    fin = open_finished(source, registry, data_dir)
    if fin.exported:
        raise PredictError(f"{fin.root} is an export already; copy the folder as it is")
    out = output_folder(out, fin.root, f"{fin.root.name}-export")
    if out.exists() and any(out.iterdir()):
        raise PredictError(f"output folder {out} is not empty; export into a new folder (or delete it first)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.export"
    files: dict[str, str] = {}

    def put(rel: str, data: bytes) -> None:
        atomic_write_bytes(tmp / rel, data)
        files[rel] = hashlib.sha256(data).hexdigest()

    try:
        put(RECIPE_FILE, (fin.root / RECIPE_FILE).read_bytes())
        put(DECISION_FILE, fin.decision_path.read_bytes())
        atomic_write_npz(tmp / TRAIN_LABELS_FILE, train_labels_arrays(fin.train))
        files[TRAIN_LABELS_FILE] = file_sha256(tmp / TRAIN_LABELS_FILE)
        listed = []
        for m in fin.members:
            folder = RunFolder(member_dir(fin.root, m.run_name))
            rel = f"{MEMBERS_DIR}/{m.run_name}"
            put(f"{rel}/{CONFIG_FILE}", folder.config.read_bytes())
            put(f"{rel}/{OOF_FILE}", folder.oof.read_bytes())
            state = read_member_weights(fin.weights[m.run_name], m.run_name)
            put(f"{rel}/{WEIGHTS_FILE}", save_safetensors({k: t.detach().to("cpu").contiguous().clone()
                                                           for k, t in state.items() if isinstance(t, torch.Tensor)}))
            put(f"{rel}/{DONE_FILE}", f"{m.run_name}\n".encode())
            listed.append({"run_name": m.run_name, "task": m.task_name, "backbone": m.backbone["name"],
                           "refit": bool(m.refit), "weights": f"{rel}/{WEIGHTS_FILE}",
                           "weights_from": fin.weights[m.run_name].name})
        atomic_write_json(tmp / EXPORT_FILE, {
            "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "ensemble_core": __version__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "exported_from": str(fin.root),
            "recipe": fin.recipe.name, "label_space": space_record(fin.label_space), "voter": fin.voter,
            "decision": fin.decision.get("applied"), "run": fin.info, "members": listed, "files": files})
        if out.exists():
            out.rmdir()   # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    say(quiet, f"[export] {len(fin.members)} member(s) of {fin.root} -> {out} ({size / 1e6:.1f} MB); predict with "
               f"`python -m ensemble_core predict {out} IMAGES`")
    return out


# ---------------------------------------------------------------- command line
def _flag_ref(parser: argparse.ArgumentParser, flag: str, name: str | None, params_json: str | None) -> Any:
    from ensemble_core.pipeline import params_flag

    if name is None and params_json is None:
        return None
    params = params_flag(parser, flag, params_json)
    if name is None:
        parser.error(f"--{flag}-params needs --{flag} NAME")
    return {"name": name, "params": params}


def _parser(command: str, description: str, run_dir: str) -> argparse.ArgumentParser:
    """The flags ``predict`` and ``export`` share: RUN_DIR, ``--data_dir`` and ``--quiet``."""
    parser = argparse.ArgumentParser(prog=f"ensemble-core {command}", description=description)
    parser.add_argument("run_dir", help=run_dir)
    parser.add_argument("--data_dir", "--data-dir", default=None,
                        help="a run's data folder when it moved (only its training labels are read)")
    parser.add_argument("--quiet", action="store_true")
    return parser


def cli_predict(argv: Sequence[str] | None = None) -> int:
    parser = _parser("predict", "Predict images with a finished run or an exported ensemble: submission.csv, "
                                "probabilities.npz, predict.json and report.md in --out; nothing in RUN_DIR changes.",
                     "a finished run's --out_dir, or a folder written by `export`")
    parser.add_argument("images", help="a folder of images, a data set's folder (its eval/), an eval folder with "
                                       "info.csv, or a CSV of image paths")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR-predict beside RUN_DIR)")
    parser.add_argument("--dataset", default=None,
                        help="data layout for the images and the submission format (default: the run's)")
    parser.add_argument("--dataset-params", default=None, metavar="JSON", help="its parameters as a JSON object")
    parser.add_argument("--executor", default=None, help="local (default), process or ray: how members are spread")
    parser.add_argument("--executor-params", default=None, metavar="JSON",
                        help='its parameters as a JSON object, e.g. \'{"workers": 2}\'')
    parser.add_argument("--skip_bad_files", "--skip-bad-files", action="store_true",
                        help="give unreadable images the fallback class instead of stopping")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per member (default: each member's own, as trained: byte-identical)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    dataset = _flag_ref(parser, "dataset", args.dataset, args.dataset_params)
    executor = _flag_ref(parser, "executor", args.executor, args.executor_params)
    record = predict(args.run_dir, args.images, out=args.out, dataset=dataset, executor=executor,
                     skip_bad_files=args.skip_bad_files, device=args.device, threads=args.threads,
                     data_dir=args.data_dir, quiet=args.quiet)
    if not args.quiet:
        out = Path(record["out"])
        for name in (SUBMISSION_FILE, PREDICT_PROBS_FILE, REPORT_FILE):
            if (out / name).is_file():
                print(f"{name}: {out / name}")
    return 0


def cli_export(argv: Sequence[str] | None = None) -> int:
    parser = _parser("export", "Write a finished run as one self-contained folder (members' weights as safetensors, "
                               "recipe, decision, label space, preprocessing) that `predict` accepts without the "
                               "training data.", "a finished run's --out_dir")
    parser.add_argument("out", help="a new (or empty) folder")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    export(args.run_dir, args.out, data_dir=args.data_dir, quiet=args.quiet)
    return 0
