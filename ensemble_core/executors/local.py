"""The ``local`` executor: members one after the other in this process."""
from __future__ import annotations

from typing import Any, Sequence

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.executors.job import (DEFAULT_RETRIES, MemberJob, MemberResult, PredictJob, check_retries,
                                         load_job_dataset, run_member_attempts)
from ensemble_core.stopping import stop_requested


class LocalExecutor:
    """Runs jobs one after the other in this process.

    Each data set is loaded once and handed to every member (the data layer decodes its images once per
    load size for all of them). With
    ``stop_on_error`` (the default) the first failing member stops the run (its
    error is usually the next member's too); the remaining jobs are reported
    as not run.
    """

    def __init__(self, stop_on_error: bool = True, retries: int = DEFAULT_RETRIES, registry: Any = None):
        if not isinstance(stop_on_error, bool):
            raise EnsembleCoreError(f"executor 'local': stop_on_error must be true or false, got {stop_on_error!r}")
        self.stop_on_error = bool(stop_on_error)
        self.retries = check_retries(retries, "local")
        self.registry = registry   # injected by Registry.build: the members build from the run's registry
        self._datasets: dict[tuple, Any] = {}

    def _dataset(self, job: MemberJob) -> Any:
        key = (job.data_dir, tuple(job.exclude), repr(job.dataset))
        if key not in self._datasets:
            self._datasets[key] = load_job_dataset(job, self.registry)
        return self._datasets[key]

    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]:
        results: list[MemberResult] = []
        try:
            for i, job in enumerate(jobs):
                if stop_requested():
                    results.extend(_left(j, "the run was stopped") for j in jobs[i:])
                    break
                dataset = None if job.is_done() or isinstance(job, PredictJob) else self._dataset(job)
                result = run_member_attempts(job, self.retries, self.registry, dataset)
                results.append(result)
                if result.status == "stopped" or (result.status == "failed" and self.stop_on_error):
                    why = "the run was stopped" if result.status == "stopped" else f"stopped after {job.run_name} failed"
                    results.extend(_left(j, why) for j in jobs[i + 1:])
                    break
        finally:
            self._datasets.clear()
        return results

    def __repr__(self) -> str:
        return f"LocalExecutor(stop_on_error={self.stop_on_error}, retries={self.retries})"


def _left(job: MemberJob, why: str) -> MemberResult:
    """A job after a stop or a failure: "skipped" when it finished before (it needs no run), else "not_run"."""
    if job.is_done():
        return MemberResult(job.run_name, job.run_dir, "skipped")
    return MemberResult(job.run_name, job.run_dir, "not_run", error=why)
