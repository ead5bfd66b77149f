"""Executors local / process / ray: the same submission for the same seeds, retries then a report
naming the failing member, and a run stopped with SIGTERM that resumes."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ensemble_core.manager import get_registry
from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import SUBMISSION_FILE
from ensemble_core.errors import TrainingError
from ensemble_core.executors import MemberJob, run_member_attempts
from ensemble_core.runfolder import DONE_FILE, ERROR_FILE
from ensemble_core.runfolder import STOP_FILE
from helpers_proc import SUBPROCESS_DEADLINE_S, WAIT_DEADLINE_S
from helpers_pipeline import TINY, load_recipe_module

REPO = Path(__file__).resolve().parents[1]
SPLITS = 2


def tiny_recipe(**fields) -> dict:
    recipe = load_recipe_module("single18").build(dataclasses.replace(TINY, **fields))
    recipe["split"]["params"]["n_splits"] = SPLITS
    return recipe


def broken_job(tmp_path: Path, data_dir: Path, name: str = "broken") -> MemberJob:
    """A job whose member dict is not a member: training raises TypeError (not a user error, so retried)."""
    return MemberJob(member={"recipe": "r"}, data_dir=str(data_dir), train_rows=np.arange(2),
                     val_rows=np.arange(2, 3), run_dir=str(tmp_path / "members" / name))


def assert_retried_and_reported(result, job: MemberJob) -> None:
    assert result.status == "failed" and result.attempts == 2
    assert "TypeError" in result.error and "after 2 attempts" in result.error
    log = (Path(job.run_dir) / ERROR_FILE).read_text()
    assert "attempt 1 of 2" in log and "attempt 2 of 2" in log and log.count("Traceback") == 2


def assert_same_member_predictions(out: Path, reference: Path) -> None:
    """The same member folders, each with byte-identical eval.npz / oof.npz arrays and the same out-of-fold
    scores: the submission alone could hide members that differ but vote the same."""
    ours = sorted(p.name for p in (out / "members").iterdir() if p.is_dir())
    assert ours == sorted(p.name for p in (reference / "members").iterdir() if p.is_dir()) and len(ours) == SPLITS
    for name in ours:
        for file in ("eval.npz", "oof.npz"):
            a, b = np.load(out / "members" / name / file), np.load(reference / "members" / name / file)
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert a[key].tobytes() == b[key].tobytes(), f"{name}/{file}[{key!r}] differs from the local run"
        summary, ref = (json.loads((d / "members" / name / "summary.json").read_text()) for d in (out, reference))
        assert {k: summary[k] for k in ("oof_macro_f1", "oof_accuracy", "best_epoch", "best_val_macro_f1")} == \
            {k: ref[k] for k in ("oof_macro_f1", "oof_accuracy", "best_epoch", "best_val_macro_f1")}


@pytest.fixture(scope="module")
def local_run(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "run"
    run_recipe(tiny_recipe(), data_dir=demo_dir, out_dir=out, quiet=True,
               executor="local")
    return out


# ---------------------------------------------------------------- same submission on every executor
@pytest.mark.slow
def test_process_executor_writes_the_same_submission_as_local(local_run, demo_dir, tmp_path):
    out = tmp_path / "run"
    result = run_recipe(tiny_recipe(), data_dir=demo_dir, out_dir=out, quiet=True,
                        executor={"name": "process", "params": {"workers": 2}})
    assert result.trained == SPLITS
    assert (out / SUBMISSION_FILE).read_bytes() == (local_run / SUBMISSION_FILE).read_bytes()
    assert_same_member_predictions(out, local_run)
    assert not (out / "members" / STOP_FILE).exists()
    again = run_recipe(tiny_recipe(), data_dir=demo_dir, out_dir=out, quiet=True, executor="process")
    assert again.trained == 0 and again.skipped == SPLITS      # resumable at member level (DONE)


def test_process_executor_plans_one_worker_per_gpu_or_core(monkeypatch):
    from ensemble_core.executors.process import ProcessExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    workers, slots = ProcessExecutor().plan(n_jobs=12)
    assert workers == 2 and slots == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    workers, slots = ProcessExecutor(workers=2).plan(n_jobs=12)
    assert workers == 2 and slots == [None, None]


def test_executor_params_are_checked_with_the_fix():
    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.executors.process import ProcessExecutor
    from ensemble_core.executors.ray import RayExecutor

    with pytest.raises(EnsembleCoreError, match="workers must be a whole number >= 1"):
        ProcessExecutor(workers=0)
    with pytest.raises(EnsembleCoreError, match="retries must be a whole number >= 0"):
        ProcessExecutor(retries=-1)
    with pytest.raises(EnsembleCoreError, match="num_cpus sizes a local Ray instance"):
        RayExecutor(address="auto", num_cpus=2)


def test_a_ray_address_with_nothing_behind_it_is_refused_before_anything_is_written(demo_dir, tmp_path):
    """A HOST:PORT that refuses connections fails at once (not after Ray's retries), and out_dir stays absent."""
    import socket

    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.pipeline import run_recipe
    from helpers_runs import tiny_recipe
    pytest.importorskip("ray")
    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    with pytest.raises(EnsembleCoreError, match=rf"cannot reach a Ray cluster at address='127.0.0.1:{port}' .*; "
                                                r"nothing was written"):
        run_recipe(tiny_recipe(executor={"name": "ray", "params": {"address": f"127.0.0.1:{port}"}}),
                   data_dir=demo_dir, out_dir=out, quiet=True)
    assert not out.exists()


def test_command_line_executor_flags_become_one_executor_reference():
    from ensemble_core.launch import executor_choice
    from ensemble_core.errors import EnsembleCoreError

    ref, rest = executor_choice("process", {"executor.params.workers": 2, "defaults.epochs": 3})
    assert ref == {"name": "process", "params": {"workers": 2}} and rest == {"defaults.epochs": 3}
    ref, rest = executor_choice(None, {"ray_address": "auto"})
    assert ref == {"name": "ray", "params": {"address": "auto"}} and rest == {}
    assert executor_choice(None, {"defaults.epochs": 3}) == (None, {"defaults.epochs": 3})
    with pytest.raises(EnsembleCoreError, match="--ray_address 'auto' is for --executor ray"):
        executor_choice("process", {"ray_address": "auto"})


# ---------------------------------------------------------------- failures: retried, then reported
def test_a_member_that_raises_is_retried_then_its_error_log_holds_every_attempt(demo_dir, tmp_path):
    job = broken_job(tmp_path, demo_dir)
    assert_retried_and_reported(run_member_attempts(job, retries=1), job)


@pytest.mark.slow
def test_process_executor_retries_in_the_worker_and_reports(demo_dir, tmp_path):
    from ensemble_core.executors.process import ProcessExecutor

    job = broken_job(tmp_path, demo_dir)
    [result] = ProcessExecutor(workers=1, retries=1).run([job])
    assert_retried_and_reported(result, job)


def _member_or_die(member: dict, marker: str) -> dict:
    """Unpickled in the worker: the first time kills that worker process (as the OOM killer would)."""
    if not Path(marker).exists():
        Path(marker).write_text("killed once")
        os._exit(137)
    return member


class MemberThatKillsItsWorkerOnce(dict):
    def __init__(self, member: dict, marker: Path):
        super().__init__(member)
        self.marker = str(marker)

    def __reduce__(self):
        return _member_or_die, (dict(self), self.marker)


@pytest.mark.slow
def test_process_executor_replaces_a_dead_worker_and_the_member_finishes(demo_dir, tmp_path):
    from ensemble_core.pipeline import plan_jobs
    from ensemble_core.executors.process import ProcessExecutor
    from ensemble_core.recipe import Recipe

    recipe = Recipe.from_dict(tiny_recipe())
    splits = [(np.arange(0, 100), np.arange(100, 140))]
    [job] = plan_jobs(Recipe.from_dict({**recipe.to_dict(), "split": {"name": "shuffle", "params": {"n_splits": 1}}}).plan(),
                      demo_dir, splits, tmp_path, (), {"quiet": True})
    marker = tmp_path / "killed"
    job = dataclasses.replace(job, member=MemberThatKillsItsWorkerOnce(job.member.to_dict(), marker))
    [result] = ProcessExecutor(workers=1, retries=1).run([job])
    assert marker.is_file(), "the worker was never killed; the test proves nothing"
    assert result.status == "trained", result.error
    assert (Path(job.run_dir) / DONE_FILE).is_file()
    [again] = ProcessExecutor(workers=1, retries=0).run([dataclasses.replace(job, member=dict(job.member))])
    assert again.status == "skipped"


@pytest.mark.slow
def test_process_executor_reports_a_dead_worker_when_retries_are_spent(tmp_path, demo_dir):
    from ensemble_core.executors.process import ProcessExecutor

    job = broken_job(tmp_path, demo_dir)
    job = dataclasses.replace(job, member=MemberThatKillsItsWorkerOnce(job.member, tmp_path / "killed"))
    [result] = ProcessExecutor(workers=1, retries=0).run([job])
    assert result.status == "failed" and "died: BrokenProcessPool" in result.error
    assert "the worker process running this member failed" in (Path(job.run_dir) / ERROR_FILE).read_text()


FLAKY_MARKER = "flaky-attempted"


def _failing_backbone(num_classes: int, **params):
    raise RuntimeError("injected failure in the test backbone")


def _flaky_backbone(num_classes: int, marker: str = "", **params):
    """Fails on the first attempt (leaving ``marker``), builds test_resnet on the next."""
    if not Path(marker).exists():
        Path(marker).write_text("1")
        raise RuntimeError("injected first-attempt failure")
    from ensemble_core.manager import get_registry
    return get_registry().build("backbone", "test_resnet", num_classes)


@pytest.fixture
def test_backbones():
    from ensemble_core import ComponentSpec, hookimpl
    from ensemble_core.manager import build_catalog, get_catalog, set_catalog

    class Plugin:
        @hookimpl
        def ensemble_register_backbones(self):
            return [ComponentSpec("t_failing", "backbone", _failing_backbone, "always raises"),
                    ComponentSpec("t_flaky", "backbone", _flaky_backbone, "raises on its first attempt")]

    before = get_catalog()
    set_catalog(build_catalog([Plugin()], autoload=False))
    yield
    set_catalog(before)


def test_failing_member_stops_the_run_naming_it_and_keeps_finished_members(test_backbones, demo_dir, tmp_path):
    recipe = tiny_recipe()
    recipe["tasks"][0]["backbones"] = ["test_resnet", "t_failing"]
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        run_recipe(recipe, data_dir=demo_dir, out_dir=out, quiet=True, executor={"name": "local", "params": {}})
    failing = next(p for p in (out / "members").iterdir() if "t_failing" in p.name)
    message = str(err.value)
    assert f"{failing.name}: RuntimeError: injected failure" in message and "after 2 attempts" in message
    assert str(failing / ERROR_FILE) in message and "rerun with the same out_dir" in message
    log = (failing / ERROR_FILE).read_text()
    assert "attempt 1 of 2: RuntimeError: injected failure" in log and "attempt 2 of 2: RuntimeError" in log
    assert log.count("Traceback (most recent call last)") == 2
    finished = [p for p in (out / "members").iterdir() if "test_resnet" in p.name]
    assert len(finished) == SPLITS and all((p / DONE_FILE).is_file() for p in finished)
    assert not (out / SUBMISSION_FILE).exists()


def test_a_flaky_member_succeeds_on_its_retry(test_backbones, demo_dir, tmp_path):
    recipe = tiny_recipe()
    recipe["split"]["params"]["n_splits"] = 1
    marker = tmp_path / FLAKY_MARKER
    recipe["tasks"][0]["backbones"] = [{"name": "t_flaky", "params": {"marker": str(marker)}}]
    result = run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True)
    [member] = result.members
    assert member.status == "trained" and member.attempts == 2 and marker.is_file()
    assert not (Path(member.run_dir) / ERROR_FILE).exists()


def test_without_retries_a_member_fails_once(demo_dir, tmp_path):
    job = broken_job(tmp_path, demo_dir)
    result = run_member_attempts(job, retries=0)
    assert result.status == "failed" and result.attempts == 1 and "after" not in result.error


# ---------------------------------------------------------------- SIGTERM: checkpoint, clean exit, resume
DRIVER = textwrap.dedent("""
    import dataclasses, sys
    sys.path.insert(0, {tests!r})
    from helpers_pipeline import TINY, load_recipe_module
    from ensemble_core.launch import launch

    preset = dataclasses.replace(TINY, epochs={epochs})
    def build(p):
        recipe = load_recipe_module("single18").build(p)
        recipe["split"]["params"]["n_splits"] = 1
        return recipe

    if __name__ == "__main__":
        print(launch("single18", build, data_dir={data!r}, out_dir={out!r}, preset=preset, quiet=True,
                     executor={executor!r}))
""")


def _saved(last: Path) -> bool:
    from ensemble_core.train.checkpoint import load_checkpoint
    try:
        return last.is_file() and bool(load_checkpoint(last))
    except Exception:  # noqa: BLE001 - polling a file being replaced
        return False


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", {"name": "process", "params": {"workers": 1}}],
                         ids=["local", "process"])
def test_sigterm_saves_a_checkpoint_exits_cleanly_and_a_rerun_resumes(executor, demo_dir, tmp_path):
    epochs = 8
    out = tmp_path / "run"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(REPO / "tests"), epochs=epochs, data=str(demo_dir), out=str(out),
                                    executor=executor))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_DEADLINE_S
    try:
        while not list(out.glob("members/*/checkpoints/last.pt")) or \
                not _saved(next(out.glob("members/*/checkpoints/last.pt"))):
            assert proc.poll() is None, f"the run ended before SIGTERM:\n{proc.stdout.read()}{proc.stderr.read()}"
            assert time.monotonic() < deadline, f"no checkpoint within {WAIT_DEADLINE_S} s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=SUBPROCESS_DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Resume by running the same command again" in stderr and "saved a last checkpoint" in stderr
    assert "Traceback" not in stderr, stderr
    [member] = list((out / "members").iterdir())
    assert (member / "checkpoints" / "last.pt").is_file() and not (member / DONE_FILE).exists()
    assert not (out / "members" / STOP_FILE).exists()
    from ensemble_core.train.checkpoint import load_checkpoint
    stopped_at = load_checkpoint(member / "checkpoints" / "last.pt")
    assert stopped_at["epoch"] < epochs - 1

    rerun = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=SUBPROCESS_DEADLINE_S)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((member / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == stopped_at["epoch"] + 1
    assert summary["resumed_from_step"] == ((stopped_at.get("partial") or {}).get("step") or 0)
    assert summary["epochs_run"] == epochs and (member / DONE_FILE).is_file() and (out / SUBMISSION_FILE).is_file()
    epochs_logged = [json.loads(x)["epoch"] for x in (member / "metrics.jsonl").read_text().splitlines()]
    assert epochs_logged == list(range(epochs))


def test_a_stop_mid_epoch_saves_that_step_and_the_rerun_continues_there(demo_dir, tmp_path, monkeypatch):
    import ensemble_core.train.member as member_module
    from ensemble_core.stopping import MemberStopped
    from ensemble_core.train import train_member
    from ensemble_core.train.checkpoint import load_checkpoint
    from helpers_train import load_demo, person_split, tiny_member

    ds = load_demo(demo_dir)
    split = person_split(ds.train)
    member = tiny_member("mask", epochs=2, batch_size=8)
    run_dir = tmp_path / member.run_name
    asked = []

    def stop_after_three_steps() -> bool:   # the loop asks before every step after the first
        asked.append(1)
        return len(asked) >= 3

    monkeypatch.setattr(member_module, "stop_requested", stop_after_three_steps)
    with pytest.raises(MemberStopped, match="in epoch 1 after step 3"):
        train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == -1 and {k: ckpt["partial"][k] for k in ("epoch", "step")} == {"epoch": 0, "step": 3}
    assert ckpt["partial"]["n_finite"] == 3 * 8 and ckpt["partial"]["loss_sum"] > 0   # the epoch's running loss
    monkeypatch.setattr(member_module, "stop_requested", lambda: False)
    summary = train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    assert summary["resumed_from_epoch"] == 0 and summary["resumed_from_step"] == 3 and summary["epochs_run"] == 2


# ---------------------------------------------------------------- Ray (optional extra)
@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_writes_the_same_submission_as_local(ray_session, local_run, demo_dir, tmp_path):
    out = tmp_path / "run"
    result = run_recipe(tiny_recipe(), data_dir=demo_dir, out_dir=out, quiet=True,
                        executor={"name": "ray", "params": {"cpus_per_member": 1}})
    assert result.trained == SPLITS
    assert (out / SUBMISSION_FILE).read_bytes() == (local_run / SUBMISSION_FILE).read_bytes()
    assert_same_member_predictions(out, local_run)
    assert ray_session.is_initialized(), "a Ray session the caller started must stay up"


@pytest.mark.slow
def test_ray_executor_retries_then_reports(ray_session, demo_dir, tmp_path):
    from ensemble_core.executors.ray import RayExecutor

    job = broken_job(tmp_path, demo_dir)
    [result] = RayExecutor(retries=1).run([job])
    assert_retried_and_reported(result, job)


@pytest.mark.slow
def test_executor_speedup_benchmark_runs_at_tiny_size_on_the_data_it_is_given(demo_dir, tmp_path):
    from helpers_data import copy_demo, tree_state

    data = copy_demo(demo_dir, tmp_path)          # its own copy: the shared folder is never handed to a script
    before = tree_state(data)
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "ENSEMBLE_CORE_RESULTS": str(results)}
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "executor_speedup.py"), "--tiny", "--append",
                          "--data", str(data)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = results.read_text()
    assert "executor speed-up: process vs local" in text and "submissions identical" in text
    assert "| process, 2 workers x 1 thread | 2 |" in text
    assert str(data) in text                      # the table names the data it ran on
    assert tree_state(data) == before, "the benchmark rebuilt or changed the data folder it was given"


def test_a_benchmark_given_a_folder_without_data_exits_with_the_fix(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_setup import given_data

    empty = tmp_path / "nothing-here"
    with pytest.raises(SystemExit) as err:
        given_data(empty)
    message = str(err.value)
    assert f"--data {str(empty)!r} holds no train/train.csv" in message
    assert "python -m ensemble_core.data.demo" in message
    assert not empty.exists(), "a folder given to a benchmark is never created or filled"
