"""What the process-pool and Ray executors share: the function a worker runs for one member, and
the parent's loop that collects results, stops the run after a failure or a signal, and reports
members that never started.

Stopping a parallel run: the parent writes ``<out_dir>/members/.stop-requested``; running members
see it (:func:`ensemble_core.stopping.watch_stop_file`), save ``checkpoints/last.pt`` and return
``"stopped"``; members that start after it return ``"not_run"`` at once. The file is removed when
the run returns, so a rerun starts clean.
"""
from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Sequence

from ensemble_core.executors.job import MemberJob, MemberResult, run_member_attempts, write_error_log
from ensemble_core.runfolder import ERROR_FILE, stop_file_for
from ensemble_core.stopping import stop_reason, stop_requested, watch_stop_file, write_stop_file


def run_member_in_worker(job: MemberJob, retries: int, stop_file: str | None) -> MemberResult:
    """Run in a worker process: the shared retry loop, stopping when ``stop_file`` appears."""
    if stop_file is not None and Path(stop_file).exists():
        return MemberResult(job.run_name, job.run_dir, "not_run", error="the run was stopped before it started")
    with watch_stop_file(stop_file):
        return run_member_attempts(job, retries)


def default_cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def crashed_result(job: MemberJob, exc: BaseException) -> MemberResult:
    """A worker that died (killed, out of memory) or could not run the job at all; the error goes to the
    member's ``error.log`` like any other failure."""
    details = "".join(traceback.format_exception(exc))
    write_error_log(Path(job.run_dir) / ERROR_FILE, f"the worker process running this member failed:\n{details}")
    return MemberResult(job.run_name, job.run_dir, "failed",
                        error=f"the worker running {job.run_name} died: {type(exc).__name__}: {exc}",
                        details=details)


Waiter = Callable[[list[Hashable], float], Iterable[tuple[Hashable, Any]]]


Resubmit = Callable[[int, BaseException], Hashable | None]


def collect(jobs: Sequence[MemberJob], handles: dict[Hashable, int], wait: Waiter,
            on_stop: Callable[[], None] = lambda: None, poll_seconds: float = 0.25,
            resubmit: Resubmit | None = None) -> list[MemberResult]:
    """Wait for every handle (``handle -> index into jobs``); ``wait(pending, timeout)`` yields
    ``(handle, MemberResult or exception)`` for finished ones. An exception means the worker died;
    ``resubmit(index, exc)`` may return a new handle for that job (a retry) or None.

    After the first failed member, or when this process is asked to stop, the stop file is written
    (running members checkpoint and return) and ``on_stop`` runs (e.g. cancel jobs not started).
    """
    results: list[MemberResult | None] = [None] * len(jobs)
    pending = dict(handles)
    stop_file = stop_file_for(jobs[0].run_dir)
    stopping = False

    def stop(reason: str) -> None:
        nonlocal stopping
        stopping = True
        write_stop_file(stop_file, reason)
        on_stop()

    try:
        while pending:
            for handle, outcome in wait(list(pending), poll_seconds):
                i = pending.pop(handle)
                if not isinstance(outcome, MemberResult) and resubmit is not None and not stopping:
                    retry = resubmit(i, outcome)
                    if retry is not None:
                        pending[retry] = i
                        continue
                result = outcome if isinstance(outcome, MemberResult) else crashed_result(jobs[i], outcome)
                results[i] = result
                if result.status == "failed" and not stopping:
                    stop(f"{result.run_name} failed")
            if not stopping and stop_requested():
                stop(stop_reason() or "stop requested")
    finally:
        stop_file.unlink(missing_ok=True)
    why = "the run was stopped" if stop_requested() else "not run after another member failed"
    return [r if r is not None else MemberResult(j.run_name, j.run_dir, "not_run", error=why)
            for r, j in zip(results, jobs)]


def clear_stop_file(jobs: Sequence[MemberJob]) -> None:
    """Remove a stop file left by a run that was killed before it could clean up."""
    if jobs:
        stop_file_for(jobs[0].run_dir).unlink(missing_ok=True)
