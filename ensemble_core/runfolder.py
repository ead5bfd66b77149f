"""Every run-folder name, in one place: the files of a recipe run and of each member's folder.

A recipe run's ``out_dir``::

    recipe.json      the resolved recipe (rerun / `ensemble` read it back)
    run.json         data folder, excluded files, preset, last run's member status
    splits.json      person-level split manifest (reused on rerun)
    data_check.json  preflight report
    members/<run_name>/  one folder per member (below), DONE last
    members/.stop-requested  written by a parallel executor when the run is asked to stop
    submission.csv   ImageID,ans for eval/info.csv
    decision.json    the decision rule, its fitted parameters, its cross-fitted estimate, the run it belongs to
    metrics.json, report.md, confusion.png, ensemble_eval.npz

An exported ensemble (``python -m ensemble_core export RUN_DIR OUT``): the run folder stripped to what
``predict`` needs, on a machine without the training data::

    ensemble.json    the manifest (written last): format, label space, members, sha256 of every file
    recipe.json, decision.json      the run's, as they are
    train_labels.npz the training table without image paths (ids, groups, labels): the voters are fitted again
                     on the members' out-of-fold predictions exactly as in the run
    members/<run_name>/  config.json, oof.npz, weights.safetensors (the member's best.pt weights), DONE

What ``predict`` writes into its ``--out``: ``submission.csv``, ``probabilities.npz`` (image_id, probs over the
final classes, class_names), ``predict.json`` and ``report.md``.

One member's folder (``<out_dir>/members/<member.run_name>``)::

    config.json          member spec, split sizes and hash, data hash, device, precision, versions
    metrics.jsonl        one line per epoch
    tb/                  TensorBoard events (scalars, validation confusion matrix)
    checkpoints/last.pt  everything needed to resume (model, optimizer, scheduler, scaler, EMA, RNG states)
    checkpoints/best.pt  weights of the best validation epoch
    oof.npz              validation images: image_id, probs (N, C_orig), truth (N,)
    eval.npz             eval images: image_id, probs
    summary.json         best epoch, scores, timings
    DONE                 written last; a member with DONE is skipped
    error.log            the tracebacks of a member's failed attempts (removed when an attempt starts)
"""
from __future__ import annotations

import json
from pathlib import Path

# ---- a recipe run's out_dir
RECIPE_FILE = "recipe.json"
RUN_FILE = "run.json"
SPLITS_FILE = "splits.json"
DATA_CHECK_FILE = "data_check.json"
SUBMISSION_FILE = "submission.csv"
DECISION_FILE = "decision.json"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
CONFUSION_FILE = "confusion.png"
ENSEMBLE_EVAL_FILE = "ensemble_eval.npz"
MEMBERS_DIR = "members"
STOP_FILE = ".stop-requested"   # in <out_dir>/members/: a parallel executor's workers stop when it appears

# ---- an exported ensemble, and what predict writes
EXPORT_FILE = "ensemble.json"
TRAIN_LABELS_FILE = "train_labels.npz"
WEIGHTS_FILE = "weights.safetensors"
PREDICT_PROBS_FILE = "probabilities.npz"
PREDICT_INFO_FILE = "predict.json"
PREDICT_WORK_DIR = ".predict-work"   # in predict's --out while members predict (their eval.npz); removed after

# ---- one member's folder
DONE_FILE = "DONE"
ERROR_FILE = "error.log"
CONFIG_FILE = "config.json"
EPOCHS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
OOF_FILE = "oof.npz"
EVAL_FILE = "eval.npz"


def members_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / MEMBERS_DIR


def member_dir(out_dir: str | Path, run_name: str) -> Path:
    """``<out_dir>/members/<run_name>``."""
    return members_dir(out_dir) / run_name


def stop_file_for(member_run_dir: str | Path) -> Path:
    """The stop file a member in ``member_run_dir`` watches (its run's ``members/.stop-requested``)."""
    return Path(member_run_dir).parent / STOP_FILE


def is_done(member_run_dir: str | Path) -> bool:
    return (Path(member_run_dir) / DONE_FILE).is_file()


class RunFolder:
    """The paths of one member's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / EPOCHS_FILE

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def prediction_weights(self) -> Path:
        """The weights a finished member predicts with: ``best.pt``, else ``last.pt`` (no epoch improved)."""
        return self.best if self.best.is_file() else self.last

    @property
    def exported_weights(self) -> Path:
        """An exported member's weights (``weights.safetensors``)."""
        return self.path / WEIGHTS_FILE

    @property
    def oof(self) -> Path:
        return self.path / OOF_FILE

    @property
    def eval(self) -> Path:
        return self.path / EVAL_FILE

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def done(self) -> Path:
        return self.path / DONE_FILE

    @property
    def error_log(self) -> Path:
        return self.path / ERROR_FILE

    def is_done(self) -> bool:
        return self.done.is_file()

    def read_summary(self) -> dict:
        return json.loads(self.summary.read_text()) if self.summary.is_file() else {}

    def create(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
