"""``process`` executor: a pool of spawned worker processes, one per GPU or per CPU slot.

    fire recipes/full.py run --executor process                          # one worker per GPU, else per 1..n cores
    fire recipes/full.py run --executor process --executor.params.workers=2

Each worker is started with the ``spawn`` method (safe for torch threads and CUDA), pinned to one GPU
through ``CUDA_VISIBLE_DEVICES`` when there are GPUs. A member's torch CPU threads are its own
``threads`` field (recipe ``defaults.threads``), the same on every executor, so the bytes are too. Members are independent: each worker loads the data set and
decodes the images its member needs. SIGINT / SIGTERM are handled in the workers too (a terminal's
Ctrl-C reaches the whole process group): they save a last checkpoint and return.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Sequence

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.executors.parallel import (clear_stop_file, collect, default_cpu_count, run_member_in_worker,
                                              submission_order)
from ensemble_core.executors.job import DEFAULT_RETRIES, MemberJob, MemberResult, check_retries


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else every CUDA device torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch
        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except ImportError:
        return []


def _init_worker(slots) -> None:
    """Runs once in each new worker: take a slot (GPU id or None), pin to it, handle signals gracefully."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import signal

    from ensemble_core.stopping import request_stop

    def handler(signum, frame):
        request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _run_job(job: MemberJob, retries: int, stop_file: str) -> MemberResult:
    from ensemble_core.stopping import clear_stop, stop_requested
    if stop_requested():  # a signal reached this worker while it was idle: the parent decides what follows
        clear_stop()
    return run_member_in_worker(job, retries, stop_file)


class WorkerPools:
    """The current spawned pool, replaced by a fresh one (same GPU slots) when a worker dies."""

    def __init__(self, workers: int, slots: list[str | None]):
        self.workers, self.slots = workers, slots
        self.ctx = multiprocessing.get_context("spawn")
        self.generation = 0
        self.current = self._new()
        self.retired: list[ProcessPoolExecutor] = []

    def _new(self) -> ProcessPoolExecutor:
        queue = self.ctx.Queue()
        for slot in self.slots[:self.workers]:
            queue.put(slot)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self.ctx, initializer=_init_worker,
                                   initargs=(queue,))

    def replace(self, broken_generation: int) -> None:
        """Start a new pool unless that was done already for this breakage."""
        if broken_generation == self.generation:
            self.retired.append(self.current)
            self.current.shutdown(wait=False, cancel_futures=True)
            self.current = self._new()
            self.generation += 1

    def close(self) -> None:
        self.current.shutdown(wait=True)

    def terminate(self) -> None:
        for pool in [self.current, *self.retired]:
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()


class ProcessExecutor:
    """Train members in parallel worker processes.

    ``workers``: pool size (default: the number of GPUs, else ``min(cores, members)``);
    ``gpus``: GPU ids to spread the workers over (default: ``CUDA_VISIBLE_DEVICES`` / every CUDA device;
    ``[]`` for CPU only); ``retries``: extra attempts for a member that raises (in its worker) or whose worker dies (the pool
    is replaced and its members resubmitted; each resumes from its last checkpoint).
    """

    def __init__(self, workers: int | None = None, gpus: Sequence[int | str] | None = None,
                 retries: int = DEFAULT_RETRIES):
        for name, value in (("workers", workers),):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise EnsembleCoreError(f"executor 'process': {name} must be a whole number >= 1 or unset, "
                                        f"got {value!r}")
        self.workers = workers
        self.gpus = None if gpus is None else [str(g) for g in (gpus if isinstance(gpus, (list, tuple)) else [gpus])]
        self.retries = check_retries(retries, "process")

    def plan(self, n_jobs: int) -> tuple[int, list[str | None]]:
        """(workers, one GPU id or None per worker)."""
        gpus = visible_gpus() if self.gpus is None else self.gpus
        cores = default_cpu_count()
        workers = self.workers or (len(gpus) if gpus else min(cores, max(n_jobs, 1)))
        slots = [gpus[i % len(gpus)] for i in range(workers)] if gpus else [None] * workers
        return workers, slots

    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]:
        jobs = list(jobs)
        todo = [i for i, j in enumerate(jobs) if not j.is_done()]
        results = [MemberResult(j.run_name, j.run_dir, "skipped") for j in jobs]
        if not todo:
            return results
        clear_stop_file(jobs)
        workers, slots = self.plan(len(todo))
        pools = WorkerPools(min(workers, len(todo)), slots)
        from ensemble_core.runfolder import stop_file_for
        stop_file = str(stop_file_for(jobs[0].run_dir))
        owner: dict[Future, int] = {}            # future -> index into todo
        generation = [0] * len(todo)             # pool generation each member was last submitted to
        crashes = [0] * len(todo)

        def submit(k: int) -> Future:
            future = pools.current.submit(_run_job, jobs[todo[k]], self.retries, stop_file)
            owner[future], generation[k] = k, pools.generation
            return future

        def resubmit(k: int, exc: BaseException) -> Future | None:
            """A worker died (killed, out of memory): every member of that pool gets a fresh one, up to
            ``retries`` times per member; each resumes from its last checkpoint."""
            if not isinstance(exc, BrokenProcessPool) or crashes[k] >= self.retries:
                return None
            crashes[k] += 1
            pools.replace(broken_generation=generation[k])
            return submit(k)

        # the pool takes jobs first in, first out: submit them in the order that finishes soonest (members
        # resubmitted after a dead worker keep that order too)
        order = submission_order([jobs[i] for i in todo], pools.workers)
        rank = {k: position for position, k in enumerate(order)}

        def wait_some(pending, timeout):
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: rank[owner[f]]):
                k = owner[f]
                try:
                    yield f, f.result()
                except CancelledError:
                    yield f, MemberResult(jobs[todo[k]].run_name, jobs[todo[k]].run_dir, "not_run",
                                          error="the run was stopped before it started")
                except Exception as exc:  # noqa: BLE001 - a dead worker (BrokenProcessPool) or pickling error
                    yield f, exc

        def cancel_pending():
            for f in owner:
                f.cancel()

        try:
            futures = {submit(k): k for k in order}
            done = collect([jobs[i] for i in todo], futures, wait_some, cancel_pending, resubmit=resubmit)
        except BaseException:
            pools.terminate()
            raise
        pools.close()
        for k, i in enumerate(todo):
            results[i] = done[k]
        return results

    def __repr__(self) -> str:
        return (f"ProcessExecutor(workers={self.workers}, gpus={self.gpus}, "
                f"retries={self.retries})")
