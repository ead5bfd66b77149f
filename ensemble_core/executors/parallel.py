"""What the process-pool and Ray executors share: the function a worker runs for one member, and
the parent's loop that collects results, stops the run after a failure or a signal, and reports
members that never started; and the order a first-in-first-out pool is given its members in
(:func:`submission_order`, used by the process and Ray executors).

Stopping a parallel run: the parent writes ``<out_dir>/members/.stop-requested``; running members
see it (:func:`ensemble_core.stopping.watch_stop_file`), save ``checkpoints/last.pt`` and return
``"stopped"``; members that start after it return ``"not_run"`` at once. The file is removed when
the run returns, so a rerun starts clean.
"""
from __future__ import annotations

import itertools
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Sequence

from ensemble_core.executors.job import MemberJob, MemberResult, PredictJob, run_member_attempts, write_error_log
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


# an image predicted costs about a third of an image trained (forward only) on the CPU and GPU alike
INFERENCE_SHARE = 1 / 3
ORDER_SEARCH_MAX_JOBS = 8      # up to this many members every submission order is simulated; above it, LPT


def tta_views(member) -> int:
    """Test-time views besides the identity of ``member``'s ``tta`` entries, each view of a multi-view entry
    (``shifts``: 4 or 9) counted. An entry that cannot be built here counts once: this only orders submissions,
    and a bad entry fails in its member with its own error."""
    refs = list(getattr(member, "tta", None) or [])
    if not refs:
        return 0
    try:
        from ensemble_core.manager import get_registry
        from ensemble_core.train.components import build_ttas
        return len(build_ttas(member, get_registry()))
    except Exception:  # noqa: BLE001 - an estimate only
        return len(refs)


def estimated_cost(job: MemberJob) -> float:
    """The member's work, roughly, in trained-image equivalents: its training images x epochs x the training
    image area, plus its validation passes (model and EMA) and out-of-fold predictions (with every test-time
    view, :func:`tta_views`) x the evaluation image area. The eval images every member predicts alike are left
    out. Only ever used to order submissions: nothing a member computes depends on it."""
    m = job.member
    if not hasattr(m, "validates_after"):   # not a planned member (it fails with its own error when it runs)
        return 0.0
    if isinstance(job, PredictJob):         # forward passes only: every image x every view
        eh, ew = m.eval_image_size or m.image_size
        return float(eh * ew * INFERENCE_SHARE * (1 + tta_views(m)) * len(job.paths))
    n_val = len(job.val_rows)
    validations = sum(map(m.validates_after, range(int(m.epochs)))) if n_val else 0
    passes = validations * (2 if m.ema_decay else 1) + 1 + tta_views(m)
    h, w = m.image_size
    eh, ew = m.eval_image_size or m.image_size
    return float(h * w * int(m.epochs) * len(job.train_rows) + eh * ew * INFERENCE_SHARE * passes * n_val)


def simulated_makespan(costs: Sequence[float], workers: int) -> float:
    """When the last of ``costs`` finishes if each starts on the first free worker, in this order."""
    free = [0.0] * max(1, workers)
    for c in costs:
        k = free.index(min(free))
        free[k] += c
    return max(free)


def submission_order(jobs: Sequence[MemberJob], workers: int) -> list[int]:
    """Indices of ``jobs`` in the order to submit them to ``workers`` slots that each take the next job when they
    free up (a process pool, FIFO). With no more jobs than workers, or equal costs, it is the plan order. Up to
    :data:`ORDER_SEARCH_MAX_JOBS` jobs every order is simulated on the estimated costs and the first with the
    shortest makespan is kept; above it, longest first (LPT). E.g. on two workers three fold members (cost 3
    each) and two refit members (4 each) in plan order finish at 3 + 3 + 4 = 10; fold, refit, fold, refit, fold
    finish at 9."""
    n = len(jobs)
    plan = list(range(n))
    if n <= workers or workers <= 1:     # every job starts at once, or one after the other whatever the order
        return plan
    costs = [estimated_cost(j) for j in jobs]
    if n > ORDER_SEARCH_MAX_JOBS:
        return sorted(plan, key=lambda i: -costs[i])     # stable: equal costs keep their plan order
    best, best_span = plan, simulated_makespan(costs, workers)
    for order in itertools.permutations(plan):
        span = simulated_makespan([costs[i] for i in order], workers)
        if span < best_span * (1 - 1e-9):
            best, best_span = list(order), span
    return best


def clear_stop_file(jobs: Sequence[MemberJob]) -> None:
    """Remove a stop file left by a run that was killed before it could clean up."""
    if jobs:
        stop_file_for(jobs[0].run_dir).unlink(missing_ok=True)
