"""The job contract every executor shares: picklable :class:`MemberJob` in, :class:`MemberResult` out.

An executor is anything with ``run(jobs) -> list[MemberResult]`` (one result
per job, same order). The built-in ``local`` executor trains the jobs one
after the other in this process; a process-pool or Ray executor only has to
ship each job to a worker and call :func:`run_member_job` there, because a
job carries everything a worker needs (the member, the data folder, the rows
of its split and its run folder) as plain data.

A member whose run folder already holds ``DONE`` is skipped without loading
any data, so rerunning a recipe resumes it.

Every executor runs a job through :func:`run_member_attempts`: a member that
raises is retried (``retries`` times, resuming from its last checkpoint) and
after the last attempt its ``error.log`` holds every attempt's traceback. A
member stopped on request (SIGINT / SIGTERM, see :mod:`ensemble_core.stopping`)
saves ``checkpoints/last.pt`` and reports ``"stopped"``; it is never retried.
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ensemble_core.atomic import atomic_write_text
from ensemble_core.errors import EnsembleCoreError, is_disk_full, os_error_message
from ensemble_core.runfolder import DONE_FILE, ERROR_FILE
from ensemble_core.stopping import MemberStopped, stop_requested

DEFAULT_RETRIES = 1          # a member that raises gets one more attempt (from its last checkpoint)



@dataclass(frozen=True)
class MemberJob:
    """One member to train: plain data, picklable, independent of the process that made it."""

    member: Any                  # the planned recipe.Member (a job file holds its to_dict())
    data_dir: str
    train_rows: np.ndarray       # row indices into the train table of load_dataset(data_dir, exclude)
    val_rows: np.ndarray
    run_dir: str
    exclude: tuple[str, ...] = ()  # files / person folders left out of the data set (skip_bad_files)
    options: dict = field(default_factory=dict)  # passed to train_member as keywords (e.g. quiet)
    dataset: dict | None = None  # the recipe's data layout {name, params}; None: the mask competition's

    @property
    def run_name(self) -> str:
        return Path(self.run_dir).name

    def is_done(self) -> bool:
        return (Path(self.run_dir) / DONE_FILE).is_file()


@dataclass(frozen=True)
class PredictJob:
    """One finished member to predict on other images (``python -m ensemble_core predict``): plain data, picklable,
    run by the same executors and retry loop as training. Its ``run_dir`` is a scratch folder of the prediction's
    output (``eval.npz``, ``summary.json``, ``DONE``), never the member's own folder."""

    member: Any                  # the planned recipe.Member
    weights: str                 # its trained weights: checkpoints/best.pt (a run) or weights.safetensors (an export)
    image_ids: tuple[str, ...]
    paths: tuple[str, ...]
    run_dir: str
    label_space: dict | None = None   # labelspace.space_record of the run's label space
    inputs: dict | None = None        # what the member's config.json records about its inputs
    options: dict = field(default_factory=dict)   # device, threads, quiet

    @property
    def run_name(self) -> str:
        return Path(self.run_dir).name

    def is_done(self) -> bool:
        return (Path(self.run_dir) / DONE_FILE).is_file()


@dataclass
class MemberResult:
    run_name: str
    run_dir: str
    status: str                  # "trained" ("predicted": a PredictJob), "skipped" (DONE was there), "failed",
                                 # "stopped" (on request, checkpoint saved) or "not_run" (after a failure or a stop)
    seconds: float = 0.0
    attempts: int = 0            # training attempts made (0: skipped / not run)
    error: str | None = None     # one-line reason when failed
    details: str | None = None   # traceback when failed
    user_error: bool = False     # the failure is an EnsembleCoreError (data / config to fix): not retried
    disk_full: bool = False      # a write failed on a full disk (error: the file and the fix): not retried


@runtime_checkable
class Executor(Protocol):
    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]: ...


def load_job_dataset(job: MemberJob, registry: Any = None):
    """The job's data set, read by its data layout (``job.dataset``; None: the mask competition's)."""
    from ensemble_core.data.layout import load_dataset

    if isinstance(job, PredictJob):   # its images are listed in the job; no data set to read
        return None
    if getattr(job, "dataset", None) is None:
        return load_dataset(job.data_dir, exclude=job.exclude)
    from ensemble_core.data.formats import build_layout
    if registry is None:
        from ensemble_core.manager import get_registry
        registry = get_registry()
    return build_layout(registry, job.dataset).load(job.data_dir, exclude=job.exclude)


def run_member_job(job: MemberJob | PredictJob, registry: Any = None, dataset: Any = None) -> MemberResult:
    """Train one member (or skip it when ``DONE`` exists); never raises for a failing member. A
    :class:`PredictJob` predicts a finished member on its images instead.

    ``registry``: the components to build from; an in-process executor passes the run's, a worker process
    passes None and uses its own process's plugin catalog (built-ins + entry points, as the parent's).
    ``dataset`` may be passed by an in-process executor that already loaded it; a worker leaves it None.
    Decoded images are the data layer's business (shared within a process, see ``data.images``).
    """
    if job.is_done():
        return MemberResult(job.run_name, job.run_dir, "skipped")
    error_file = Path(job.run_dir) / ERROR_FILE
    try:
        error_file.unlink(missing_ok=True)
    except OSError:
        pass  # a stale error.log we cannot remove must not stop the member
    start = time.perf_counter()
    try:
        from ensemble_core.manager import get_registry
        from ensemble_core.recipe import Member
        from ensemble_core.train import train_member

        if registry is None:
            registry = get_registry()
        if isinstance(job, PredictJob):
            from ensemble_core.train.inference import predict_member_into
            predict_member_into(job.run_dir, job.member, job.weights, job.image_ids, job.paths, job.label_space,
                                registry, inputs=job.inputs, **job.options)
        else:
            if dataset is None:
                dataset = load_job_dataset(job, registry)
            split = (np.asarray(job.train_rows, dtype=np.int64), np.asarray(job.val_rows, dtype=np.int64))
            train_member(Member.from_dict(job.member), dataset, split, Path(job.run_dir), registry=registry,
                         **job.options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except MemberStopped as exc:
        return MemberResult(job.run_name, job.run_dir, "stopped", time.perf_counter() - start, error=str(exc))
    except Exception as exc:  # one member's failure is reported with its run folder
        if is_disk_full(exc):   # the same disk fails a retry the same way; no error.log to fill it further
            return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                                error=os_error_message(exc), user_error=True, disk_full=True)
        details = traceback.format_exc()
        write_error_log(error_file, details)
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"{type(exc).__name__}: {exc}", details=details,
                            user_error=isinstance(exc, EnsembleCoreError))
    if not job.is_done():
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"train_member returned without writing {DONE_FILE} in {job.run_dir}")
    return MemberResult(job.run_name, job.run_dir, "predicted" if isinstance(job, PredictJob) else "trained",
                        time.perf_counter() - start)


def write_error_log(path: Path, text: str) -> bool:
    """Write a member's ``error.log``; never raises. When the file cannot be written (a full disk, a
    read-only folder) the failure being reported must not be masked, nor the remaining retries skipped:
    the reason goes to stderr and the caller goes on."""
    try:
        atomic_write_text(path, text)
        return True
    except OSError as exc:
        print(f"warning: cannot write {path} ({exc.strerror or exc}); the member's error is: "
              f"{text.strip().splitlines()[-1] if text.strip() else '(empty)'}", file=sys.stderr, flush=True)
        return False


def check_retries(retries: Any, executor: str) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise EnsembleCoreError(f"executor {executor!r}: retries must be a whole number >= 0, got {retries!r}")
    return retries


def is_retryable(result: MemberResult) -> bool:
    """Retry a member that raised something unexpected (out of memory, a lost file system, a flaky
    download); an :class:`EnsembleCoreError` (bad data, bad config, NaN loss) or a full disk fails the same way
    again."""
    return result.status == "failed" and result.details is not None and not result.user_error


def run_member_attempts(job: MemberJob | PredictJob, retries: int = DEFAULT_RETRIES, registry: Any = None,
                        dataset: Any = None) -> MemberResult:
    """:func:`run_member_job` up to ``1 + retries`` times; never raises for a failing member.

    Each retry resumes from the member's last checkpoint. After the last failed attempt the member's
    ``error.log`` holds the traceback of every attempt, and the result names them.
    """
    logs: list[str] = []
    seconds = 0.0
    for attempt in range(1, retries + 2):
        result = run_member_job(job, registry, dataset)
        seconds += result.seconds
        result.seconds, result.attempts = seconds, (attempt if result.status != "skipped" else 0)
        if result.status != "failed":
            return result
        logs.append(f"===== attempt {attempt} of {retries + 1}: {result.error}\n{result.details or ''}")
        if not is_retryable(result) or attempt > retries or stop_requested():
            break
    if result.details is not None:
        write_error_log(Path(job.run_dir) / ERROR_FILE, "\n".join(logs))
        result.details = "\n".join(logs)
    if result.attempts > 1:
        result.error = f"{result.error} (after {result.attempts} attempts)"
    return result
