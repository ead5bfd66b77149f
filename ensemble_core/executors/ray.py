"""``ray`` executor: one Ray task per member, with its own CPU / GPU request.

    fire recipes/full.py run --executor ray                       # starts a local Ray instance
    fire recipes/full.py run --executor ray --ray_address auto    # joins the cluster this node belongs to

Needs the ``ray`` extra (``pip install -e ".[ray]"``) on the driver and every node, ensemble_core
installed on every node, and the data folder and ``out_dir`` at the same path on every node (a shared
file system): members write their run folders there and the driver reads their predictions. Ray pins
each task to its GPUs through ``CUDA_VISIBLE_DEVICES``. A worker that dies (node lost, killed for
memory) is rerun by Ray ``retries`` times; a member that raises is retried by the shared retry loop.
"""
from __future__ import annotations

from typing import Any, Sequence

from ensemble_core.errors import EnsembleCoreError
from ensemble_core.executors.parallel import clear_stop_file, collect, run_member_in_worker, submission_order
from ensemble_core.executors.job import DEFAULT_RETRIES, MemberJob, MemberResult, check_retries

INSTALL_HINT = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise EnsembleCoreError(f"executor 'ray' needs Ray, which is not installed: {INSTALL_HINT}; or use "
                                f"--executor process on one machine") from exc
    return ray


def _ray_member_task(job: MemberJob, retries: int, stop_file: str) -> MemberResult:
    return run_member_in_worker(job, retries, stop_file)


class RayExecutor:
    """Train each member as a Ray task.

    ``address``: ``None`` starts a local Ray instance (or uses the one this process already
    started); ``"auto"`` or ``"ray://host:10001"`` / ``"host:6379"`` joins a cluster.
    ``num_cpus``: CPUs of a local instance (default: all). ``cpus_per_member`` /
    ``num_gpus_per_member``: each task's request (GPUs default to 1 when the cluster has GPUs, else 0).
    A member's torch CPU threads are its own ``threads`` field, the same on every executor.
    ``retries``: extra attempts for a member that raises, and Ray reruns of a task whose worker died.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_member: float = 1,
                 num_gpus_per_member: float | None = None, retries: int = DEFAULT_RETRIES):
        if not isinstance(cpus_per_member, (int, float)) or isinstance(cpus_per_member, bool) or cpus_per_member <= 0:
            raise EnsembleCoreError(f"executor 'ray': cpus_per_member must be a number > 0, got {cpus_per_member!r}")
        if num_gpus_per_member is not None and (not isinstance(num_gpus_per_member, (int, float))
                                                or num_gpus_per_member < 0):
            raise EnsembleCoreError(f"executor 'ray': num_gpus_per_member must be a number >= 0 or unset, "
                                    f"got {num_gpus_per_member!r}")
        if address is not None and num_cpus is not None:
            raise EnsembleCoreError("executor 'ray': num_cpus sizes a local Ray instance; leave it unset with "
                                    f"address={address!r} (the cluster's nodes declare their own CPUs)")
        import importlib.util
        if importlib.util.find_spec("ray") is None:   # refused before the run writes anything
            import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_member = cpus_per_member
        self.num_gpus_per_member = num_gpus_per_member
        self.retries = check_retries(retries, "ray")

    def preflight(self) -> None:
        """Before the run writes anything: a ``HOST:PORT`` address must accept a connection (5 s), so an address
        with nothing behind it is refused at once instead of after Ray's own retries (``auto``, ``ray://`` and a
        local instance are left to Ray)."""
        address = self.address
        if not address or address == "auto" or "://" in address:
            return
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            return
        import socket
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        except OSError as exc:
            raise EnsembleCoreError(f"executor 'ray': cannot reach a Ray cluster at address={address!r} ({exc}); "
                                    f"nothing was written. Start one with `ray start --head` on the head node, or "
                                    f"leave --ray_address unset to start a local Ray instance") from None

    def _connect(self, ray) -> bool:
        """Start or join Ray unless this process is connected already; True when we connected (and disconnect)."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
        if self.address is None:
            kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as exc:
            raise EnsembleCoreError(f"executor 'ray': cannot reach a Ray cluster at address={self.address!r} ({exc}). "
                                    f"Start one with `ray start --head` on the head node, or leave --ray_address "
                                    f"unset to start a local Ray instance") from exc
        return True

    def gpus_per_member(self, ray) -> float:
        if self.num_gpus_per_member is not None:
            return float(self.num_gpus_per_member)
        return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0

    def slots(self, ray, gpus: float) -> int:
        """How many members the cluster runs at once: per live node, how many member requests (CPUs, and GPUs
        when members ask for them) fit in its resources, summed; at least 1."""
        def fit(resources) -> int:
            fits = [resources.get("CPU", 0) / self.cpus_per_member]
            if gpus > 0:
                fits.append(resources.get("GPU", 0) / gpus)
            return int(min(fits) + 1e-9)
        nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive", True)]
        return max(1, sum(map(fit, nodes)) if nodes else fit(ray.cluster_resources()))

    def run(self, jobs: Sequence[MemberJob]) -> list[MemberResult]:
        jobs = list(jobs)
        todo = [i for i, j in enumerate(jobs) if not j.is_done()]
        results = [MemberResult(j.run_name, j.run_dir, "skipped") for j in jobs]
        if not todo:
            return results
        ray = import_ray()
        from ensemble_core.runfolder import stop_file_for

        clear_stop_file(jobs)
        stop_file = str(stop_file_for(jobs[0].run_dir))
        started = self._connect(ray)
        try:
            gpus = self.gpus_per_member(ray)
            task = ray.remote(_ray_member_task).options(num_cpus=self.cpus_per_member, num_gpus=gpus,
                                                        max_retries=self.retries)
            # Ray generally starts queued tasks of one resource shape in the order they were submitted: submit them
            # in the order that finishes soonest on the cluster's slots (as the process executor does)
            order = submission_order([jobs[i] for i in todo], self.slots(ray, gpus))
            refs = {task.remote(jobs[todo[k]], self.retries, stop_file): k for k in order}

            def wait_some(pending, timeout):
                ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
                for ref in ready:
                    try:
                        yield ref, ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the worker died after Ray's retries
                        yield ref, exc

            try:
                done = collect([jobs[i] for i in todo], refs, wait_some)
            except BaseException:
                for ref in refs:
                    ray.cancel(ref, force=True)
                raise
        finally:
            if started:
                ray.shutdown()
        for k, i in enumerate(todo):
            results[i] = done[k]
        return results

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, "
                f"cpus_per_member={self.cpus_per_member}, num_gpus_per_member={self.num_gpus_per_member}, "
                f"retries={self.retries})")
