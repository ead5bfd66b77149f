"""Executors run planned members; the pipeline hands them picklable :class:`MemberJob` objects.

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
from ensemble_core.errors import EnsembleCoreError
from ensemble_core.stopping import MemberStopped, stop_requested

DEFAULT_RETRIES = 1          # a member that raises gets one more attempt (from its last checkpoint)

DONE_FILE = "DONE"
ERROR_FILE = "error.log"   # traceback of the last failed attempt (removed when an attempt starts)


@dataclass(frozen=True)
class MemberJob:
    """One member to train: plain data, picklable, independent of the process that made it."""

    member: dict                 # MemberSpec.to_dict()
    data_dir: str
    train_rows: np.ndarray       # row indices into the train table of load_dataset(data_dir, exclude)
    val_rows: np.ndarray
    run_dir: str
    exclude: tuple[str, ...] = ()  # files / person folders left out of the data set (skip_bad_files)
    options: dict = field(default_factory=dict)  # passed to train_member as keywords (e.g. quiet)

    @property
    def run_name(self) -> str:
        return Path(self.run_dir).name

    def is_done(self) -> bool:
        return (Path(self.run_dir) / DONE_FILE).is_file()


@dataclass
class MemberResult:
    run_name: str
    run_dir: str
    status: str                  # "trained", "skipped" (DONE was there), "failed", "stopped" (on request, checkpoint
                                 # saved) or "not_run" (after a failure or a stop)
    seconds: float = 0.0
    attempts: int = 0            # training attempts made (0: skipped / not run)
    error: str | None = None     # one-line reason when failed
    details: str | None = None   # traceback when failed
    user_error: bool = False     # the failure is an EnsembleCoreError (data / config to fix): not retried


@runtime_checkable
class Executor(Protocol):
    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]: ...


def load_job_dataset(job: MemberJob):
    from ensemble_core.data.layout import load_dataset

    return load_dataset(job.data_dir, exclude=job.exclude)


def run_member_job(job: MemberJob, dataset: Any = None, image_cache: Any = None) -> MemberResult:
    """Train one member (or skip it when ``DONE`` exists); never raises for a failing member.

    ``dataset`` and ``image_cache`` (decoded images) may be passed by an
    in-process executor that already loaded them; a worker process leaves
    them ``None`` and the member loads what it needs.
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
        from ensemble_core.recipe import MemberSpec
        from ensemble_core.train import train_member

        if dataset is None:
            dataset = load_job_dataset(job)
        split = (np.asarray(job.train_rows, dtype=np.int64), np.asarray(job.val_rows, dtype=np.int64))
        train_member(MemberSpec.from_dict(job.member), dataset, split, Path(job.run_dir), image_cache=image_cache,
                     **job.options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except MemberStopped as exc:
        return MemberResult(job.run_name, job.run_dir, "stopped", time.perf_counter() - start, error=str(exc))
    except Exception as exc:  # one member's failure is reported with its run folder
        details = traceback.format_exc()
        write_error_log(error_file, details)
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"{type(exc).__name__}: {exc}", details=details,
                            user_error=isinstance(exc, EnsembleCoreError))
    if not job.is_done():
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"train_member returned without writing {DONE_FILE} in {job.run_dir}")
    return MemberResult(job.run_name, job.run_dir, "trained", time.perf_counter() - start)


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
    download); an :class:`EnsembleCoreError` (bad data, bad config, NaN loss) fails the same way again."""
    return result.status == "failed" and result.details is not None and not result.user_error


def run_member_attempts(job: MemberJob, retries: int = DEFAULT_RETRIES, dataset: Any = None,
                        image_cache: Any = None) -> MemberResult:
    """:func:`run_member_job` up to ``1 + retries`` times; never raises for a failing member.

    Each retry resumes from the member's last checkpoint. After the last failed attempt the member's
    ``error.log`` holds the traceback of every attempt, and the result names them.
    """
    logs: list[str] = []
    seconds = 0.0
    for attempt in range(1, retries + 2):
        result = run_member_job(job, dataset, image_cache)
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


class LocalExecutor:
    """Runs jobs one after the other in this process.

    Each data set is loaded once, and its images are decoded once per load size
    (``share_images``) and shared by every member that uses that size. With
    ``stop_on_error`` (the default) the first failing member stops the run (its
    error is usually the next member's too); the remaining jobs are reported
    as not run.
    """

    def __init__(self, stop_on_error: bool = True, share_images: bool = True, retries: int = DEFAULT_RETRIES):
        for name, value in (("stop_on_error", stop_on_error), ("share_images", share_images)):
            if not isinstance(value, bool):
                raise EnsembleCoreError(f"executor 'local': {name} must be true or false, got {value!r}")
        self.stop_on_error = bool(stop_on_error)
        self.share_images = bool(share_images)
        self.retries = check_retries(retries, "local")
        self._datasets: dict[tuple, Any] = {}
        self._caches: dict[tuple, Any] = {}

    def _dataset(self, job: MemberJob) -> Any:
        key = (job.data_dir, tuple(job.exclude))
        if key not in self._datasets:
            self._datasets[key] = load_job_dataset(job)
        return self._datasets[key]

    def _image_cache(self, job: MemberJob, dataset: Any) -> Any:
        load_size = job.member.get("fields", {}).get("load_size")
        if not self.share_images or load_size is None:
            return None  # images of unknown / mixed size: the member decides how to load them
        key = (job.data_dir, tuple(job.exclude), tuple(load_size))
        if key not in self._caches:
            from ensemble_core.data.images import image_cache

            paths = list(dataset.train["path"])
            if getattr(dataset, "eval", None) is not None:
                paths += list(dataset.eval["path"])
            self._caches.clear()  # keep one decoded set in memory at a time
            self._caches[key] = image_cache(list(dict.fromkeys(str(p) for p in paths)), load_size=load_size)
        return self._caches[key]

    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]:
        results: list[MemberResult] = []
        try:
            for i, job in enumerate(jobs):
                if stop_requested():
                    results.extend(MemberResult(j.run_name, j.run_dir, "not_run", error="the run was stopped")
                                   for j in jobs[i:])
                    break
                dataset = cache = None
                if not job.is_done():
                    dataset = self._dataset(job)
                    cache = self._image_cache(job, dataset)
                result = run_member_attempts(job, self.retries, dataset, cache)
                results.append(result)
                if result.status == "stopped" or (result.status == "failed" and self.stop_on_error):
                    why = "the run was stopped" if result.status == "stopped" else f"stopped after {job.run_name} failed"
                    results.extend(MemberResult(j.run_name, j.run_dir, "not_run", error=why) for j in jobs[i + 1:])
                    break
        finally:
            self._datasets.clear()
            self._caches.clear()
        return results

    def __repr__(self) -> str:
        return (f"LocalExecutor(stop_on_error={self.stop_on_error}, share_images={self.share_images}, "
                f"retries={self.retries})")
