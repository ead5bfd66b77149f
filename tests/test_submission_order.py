"""The process and Ray executors' submission order: members are submitted so that the pool, which hands the next job to
the first free worker, finishes soonest on the estimated costs (plan order when that changes nothing)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ensemble_core.executors import MemberJob
from ensemble_core.executors.parallel import estimated_cost, simulated_makespan, submission_order
from ensemble_core.recipe import Recipe

N_PEOPLE_ROWS = 900


def member(**fields):
    return Recipe.from_dict({"name": "o", "split": {"name": "kfold", "params": {"n_splits": 3}},
                             "tasks": [{"task": "all18", "backbone": "test_resnet", "epochs": 5,
                                        "image_size": [48, 48], **fields}]}).plan()[0]


def job(m, n_train: int, n_val: int, name: str, root: str = "/nonexistent") -> MemberJob:
    return MemberJob(member=m, data_dir="unused", train_rows=np.arange(n_train), val_rows=np.arange(n_val),
                     run_dir=f"{root}/members/{name}")


def folds_and_refits(n_folds=3, n_refit=2, root: str = "/nonexistent", **fields):
    m = member(**fields)
    fold = [job(m, N_PEOPLE_ROWS * 2 // 3, N_PEOPLE_ROWS // 3, f"f{i}", root) for i in range(n_folds)]
    refit = [job(dataclasses.replace(m, refit=True), N_PEOPLE_ROWS, 0, f"r{i}", root) for i in range(n_refit)]
    return fold + refit


def test_costs_count_training_validation_and_size():
    base = member()
    fold, refit = job(base, 600, 300, "f"), job(dataclasses.replace(base, refit=True), 900, 0, "r")
    assert estimated_cost(refit) == 48 * 48 * 5 * 900                       # no validation people
    # five validations x (model + EMA) + the out-of-fold predictions with the hflip view, a third of a step each
    ema = job(member(ema_decay=0.99), 600, 300, "e")
    assert estimated_cost(ema) == 48 * 48 * (5 * 600 + (5 * 2 + 2) * 300 / 3)
    # a multi-view TTA counts each view: shifts with flips is 9 views besides the identity
    shifts = job(member(tta=[{"name": "shifts", "params": {"pixels": 2}}]), 600, 300, "s")
    assert estimated_cost(shifts) == 48 * 48 * (5 * 600 + (5 + 1 + 9) * 300 / 3)
    last_only = job(member(ema_decay=0.99, val_every=5), 600, 300, "v")
    assert estimated_cost(last_only) == 48 * 48 * (5 * 600 + (1 * 2 + 2) * 300 / 3)
    every_other = job(member(val_every=2), 600, 300, "o")                  # after epochs 2, 4 and the last, 5
    assert estimated_cost(every_other) == 48 * 48 * (5 * 600 + (3 + 2) * 300 / 3)
    larger_eval = job(member(eval_image_size=[96, 96]), 600, 300, "l")      # predictions at the eval size
    assert estimated_cost(larger_eval) == 48 * 48 * 5 * 600 + 96 * 96 * (5 + 2) * 300 / 3
    assert estimated_cost(job(member(image_size=[96, 96]), 600, 300, "big")) == 4 * estimated_cost(fold)
    assert estimated_cost(MemberJob(member={"recipe": "r"}, data_dir="x", train_rows=np.arange(2),
                                    val_rows=np.arange(1), run_dir="/nonexistent/x")) == 0.0


def test_folds_then_refits_are_interleaved_so_two_workers_finish_sooner():
    jobs = folds_and_refits(val_every=5)
    costs = [estimated_cost(j) for j in jobs]
    order = submission_order(jobs, workers=2)
    assert sorted(order) == list(range(5))
    plan_span = simulated_makespan(costs, 2)
    span = simulated_makespan([costs[i] for i in order], 2)
    assert span < plan_span * 0.95
    # the best any order can do here: the two refit members on one worker, the three folds on the other
    assert span == max(costs[3] + costs[4], costs[0] + costs[1] + costs[2])
    assert order == [0, 3, 1, 4, 2]      # the first such order: fold, refit, fold, refit, fold


def test_plan_order_is_kept_when_nothing_is_gained():
    jobs = folds_and_refits(n_refit=0)
    assert submission_order(jobs, workers=2) == [0, 1, 2]             # equal costs
    assert submission_order(folds_and_refits(), workers=5) == [0, 1, 2, 3, 4]   # a worker for every job
    assert submission_order(folds_and_refits(), workers=1) == [0, 1, 2, 3, 4]   # one worker: any order ends alike


def test_many_jobs_go_longest_first_keeping_plan_order_among_equals():
    jobs = folds_and_refits(n_folds=6, n_refit=3)
    assert submission_order(jobs, workers=2) == [6, 7, 8, 0, 1, 2, 3, 4, 5]


def test_the_process_executor_submits_the_unfinished_members_in_that_order(tmp_path, monkeypatch):
    """A finished member is left out before ordering; the rest reach the pool fold, refit, fold, refit, fold."""
    from concurrent.futures import Future

    import ensemble_core.executors.process as process
    from ensemble_core.executors import MemberResult

    submitted = []

    class RecordingPools:     # stands in for the spawned pool: records what is submitted, finishes it at once
        def __init__(self, workers, slots):
            self.workers, self.generation, self.current = workers, 0, self

        def submit(self, fn, job, retries, stop_file):
            submitted.append(job.run_name)
            future = Future()
            future.set_result(MemberResult(job.run_name, job.run_dir, "trained"))
            return future

        def close(self):
            pass

        def terminate(self):
            pass

    monkeypatch.setattr(process, "WorkerPools", RecordingPools)
    jobs = folds_and_refits(n_folds=4, root=str(tmp_path), val_every=5)     # f0 f1 f2 f3 r0 r1
    done = tmp_path / "members" / "f0"
    done.mkdir(parents=True)
    (done / "DONE").write_text("trained\n")
    results = process.ProcessExecutor(workers=2).run(jobs)
    assert submitted == ["f1", "r0", "f2", "r1", "f3"]
    assert [r.run_name for r in results] == ["f0", "f1", "f2", "f3", "r0", "r1"]      # results in plan order
    assert [r.status for r in results] == ["skipped"] + ["trained"] * 5


def test_the_ray_executor_submits_in_that_order_on_the_cluster_slots(tmp_path, monkeypatch):
    """Ray gets the same order for its slots (cluster CPUs over cpus_per_member, or GPUs over GPUs per member)."""
    import ensemble_core.executors.ray as ray_executor
    from ensemble_core.executors import MemberResult

    submitted = []

    class FakeRemote:
        def options(self, **kwargs):
            return self

        def remote(self, job, retries, stop_file):
            submitted.append(job.run_name)
            return job.run_name

    class FakeRay:       # a cluster of nodes with these CPUs (and GPUs) whose tasks finish at once
        def __init__(self, *nodes):
            self.node_resources = [{"CPU": n[0], "GPU": n[1] if len(n) > 1 else 0} for n in nodes]

        def is_initialized(self):
            return True

        def nodes(self):
            return [{"Alive": True, "Resources": r} for r in self.node_resources] + [{"Alive": False, "Resources":
                                                                                     {"CPU": 64}}]

        def cluster_resources(self):
            return {k: sum(r[k] for r in self.node_resources) for k in ("CPU", "GPU")}

        def remote(self, fn):
            return FakeRemote()

        def wait(self, pending, num_returns, timeout):
            return list(pending)[:1], list(pending)[1:]

        def get(self, ref):
            return MemberResult(ref, str(tmp_path / "members" / ref), "trained")

    monkeypatch.setattr(ray_executor, "import_ray", lambda: FakeRay((2,)))     # before building: no Ray needed
    executor = ray_executor.RayExecutor(cpus_per_member=1)
    assert executor.slots(FakeRay((2,)), 0) == 2 and executor.slots(FakeRay((16, 4)), 1.0) == 4
    assert ray_executor.RayExecutor(cpus_per_member=4).slots(FakeRay((2,)), 0) == 1
    # per node: two 3-CPU nodes fit one 2-CPU member each (not 6 // 2 = 3); a dead node counts for nothing
    assert ray_executor.RayExecutor(cpus_per_member=2).slots(FakeRay((3,), (3,)), 0) == 2
    assert executor.slots(FakeRay((8,), (4, 1)), 1.0) == 1       # GPU members fit on the GPU node only
    jobs = folds_and_refits(root=str(tmp_path), val_every=5)     # f0 f1 f2 r0 r1
    results = executor.run(jobs)
    assert submitted == ["f0", "r0", "f1", "r1", "f2"]
    assert [r.run_name for r in results] == ["f0", "f1", "f2", "r0", "r1"] and {r.status for r in results} == {"trained"}
    submitted.clear()
    monkeypatch.setattr(ray_executor, "import_ray", lambda: FakeRay((8,)))     # a slot for every member: plan order
    executor.run(folds_and_refits(root=str(tmp_path / "b"), val_every=5))
    assert submitted == ["f0", "f1", "f2", "r0", "r1"]
