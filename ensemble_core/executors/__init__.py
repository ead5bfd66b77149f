"""Executors schedule planned members; they never look inside the data or a member's fields.

An executor is anything with ``run(jobs) -> list[MemberResult]`` (one result per job, same order):

- :mod:`.job`: the contract (:class:`MemberJob`, :class:`PredictJob`, :class:`MemberResult`, :class:`Executor`),
  running one job (:func:`run_member_job`) and the retry loop every executor shares (:func:`run_member_attempts`);
- :mod:`.local`: ``local``, members one after the other in this process;
- :mod:`.parallel`: what ``process`` and ``ray`` share (the worker's function, collecting results, stopping);
- :mod:`.process`, :mod:`.ray`: the ``process`` (spawned pool) and ``ray`` executors.
"""
from ensemble_core.executors.job import (DEFAULT_RETRIES, Executor, MemberJob, MemberResult, PredictJob,
                                         check_retries, run_member_attempts, run_member_job)
from ensemble_core.executors.local import LocalExecutor

__all__ = ["DEFAULT_RETRIES", "Executor", "LocalExecutor", "MemberJob", "MemberResult", "PredictJob", "check_retries",
           "run_member_attempts", "run_member_job"]
