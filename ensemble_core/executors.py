"""Executors run planned members; the pipeline hands them picklable :class:`MemberJob` objects.

An executor is anything with ``run(jobs) -> list[MemberResult]`` (one result
per job, same order). The built-in ``local`` executor trains the jobs one
after the other in this process; a process-pool or Ray executor only has to
ship each job to a worker and call :func:`run_member_job` there, because a
job carries everything a worker needs (the member, the data folder, the rows
of its split and its run folder) as plain data.

A member whose run folder already holds ``DONE`` is skipped without loading
any data, so rerunning a recipe resumes it.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

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
    status: str                  # "trained", "skipped" (DONE was there), "failed" or "not_run" (after a failure)
    seconds: float = 0.0
    error: str | None = None     # one-line reason when failed
    details: str | None = None   # traceback when failed


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
    error_file.unlink(missing_ok=True)
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
    except Exception as exc:  # one member's failure is reported with its run folder
        details = traceback.format_exc()
        error_file.parent.mkdir(parents=True, exist_ok=True)
        error_file.write_text(details)
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"{type(exc).__name__}: {exc}", details=details)
    if not job.is_done():
        return MemberResult(job.run_name, job.run_dir, "failed", time.perf_counter() - start,
                            error=f"train_member returned without writing {DONE_FILE} in {job.run_dir}")
    return MemberResult(job.run_name, job.run_dir, "trained", time.perf_counter() - start)


class LocalExecutor:
    """Runs jobs one after the other in this process.

    Each data set is loaded once, and its images are decoded once per load size
    (``share_images``) and shared by every member that uses that size. With
    ``stop_on_error`` (the default) the first failing member stops the run (its
    error is usually the next member's too); the remaining jobs are reported
    as not run.
    """

    def __init__(self, stop_on_error: bool = True, share_images: bool = True):
        self.stop_on_error = bool(stop_on_error)
        self.share_images = bool(share_images)
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
            from ensemble_core.data.images import ImageCache

            paths = list(dataset.train["path"])
            if getattr(dataset, "eval", None) is not None:
                paths += list(dataset.eval["path"])
            self._caches.clear()  # keep one decoded set in memory at a time
            self._caches[key] = ImageCache(list(dict.fromkeys(str(p) for p in paths)), load_size=load_size)
        return self._caches[key]

    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]:
        results: list[MemberResult] = []
        try:
            for i, job in enumerate(jobs):
                dataset = cache = None
                if not job.is_done():
                    dataset = self._dataset(job)
                    cache = self._image_cache(job, dataset)
                result = run_member_job(job, dataset, cache)
                results.append(result)
                if result.status == "failed" and self.stop_on_error:
                    results.extend(MemberResult(j.run_name, j.run_dir, "not_run",
                                                error=f"stopped after {job.run_name} failed")
                                   for j in jobs[i + 1:])
                    break
        finally:
            self._datasets.clear()
            self._caches.clear()
        return results

    def __repr__(self) -> str:
        return f"LocalExecutor(stop_on_error={self.stop_on_error}, share_images={self.share_images})"
