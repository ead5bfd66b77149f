"""The ``local`` executor: members one after the other in this process."""
from __future__ import annotations

from typing import Any, Sequence

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.executors.job import (DEFAULT_RETRIES, MemberJob, MemberResult, check_retries, load_job_dataset,
                                         run_member_attempts)
from ensemble_core.stopping import stop_requested


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
