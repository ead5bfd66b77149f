"""Signals through the recipe command, made deterministic with a backbone that waits while a gate file
exists: the first SIGINT stops the run after the running member saves a checkpoint (exit 130, how to resume,
no traceback, and the rerun resumes); a second signal stops at once (no new checkpoint, the last one kept)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ensemble_core.runfolder import DONE_FILE
from helpers_proc import SUBPROCESS_DEADLINE_S, WAIT_DEADLINE_S

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3

DRIVER = textwrap.dedent("""
    import dataclasses, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import torch
    from test_pipeline import TINY, load_recipe_module
    from ensemble_core import ComponentSpec, hookimpl
    from ensemble_core.launch import launch
    from ensemble_core.manager import build_catalog, get_registry, set_catalog
    from ensemble_core.stopping import stop_requested

    GATE, WAITING, SEEN = Path({gate!r}), Path({waiting!r}), Path({seen!r})

    class Gated(torch.nn.Module):
        # test_resnet; a training step waits while GATE exists (WAITING says so, SEEN: a stop was requested)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            while self.training and GATE.exists():
                WAITING.touch()
                if stop_requested():
                    SEEN.touch()
                time.sleep(0.02)
            return self.inner(x)

    def gated(num_classes, **params):
        return Gated(get_registry().build("backbone", "test_resnet", num_classes))

    class Plugin:
        @hookimpl
        def ensemble_register_backbones(self):
            return [ComponentSpec("t_gated", "backbone", gated, "test: waits while a gate file exists")]

    set_catalog(build_catalog([Plugin()], autoload=False))
    preset = dataclasses.replace(TINY, epochs={epochs})

    def build(p):
        recipe = load_recipe_module("single18").build(p)
        recipe["split"]["params"]["n_splits"] = 1
        recipe["tasks"][0]["backbone"] = "t_gated"
        return recipe

    if __name__ == "__main__":
        print(launch("single18", build, data_dir={data!r}, out_dir={out!r}, preset=preset, quiet=True,
                     executor="local"))
""")


class GatedRun:
    def __init__(self, tmp_path: Path, data: Path):
        self.gate, self.waiting, self.seen = (tmp_path / n for n in ("gate", "waiting", "seen"))
        self.out = tmp_path / "run"
        self.script = tmp_path / "driver.py"
        self.script.write_text(DRIVER.format(tests=str(REPO / "tests"), gate=str(self.gate),
                                             waiting=str(self.waiting), seen=str(self.seen), epochs=EPOCHS,
                                             data=str(data), out=str(self.out)))
        self.env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(self.script)], cwd=self.script.parent, env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(self, what, description: str) -> None:
        deadline = time.monotonic() + WAIT_DEADLINE_S
        while not what():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"the run ended while waiting for {description}:\n{out}{err}")
            assert time.monotonic() < deadline, f"no {description} within {WAIT_DEADLINE_S} s"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=SUBPROCESS_DEADLINE_S)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def member(self) -> Path:
        [member] = [p for p in (self.out / "members").iterdir() if p.is_dir()]
        return member

    def last(self) -> Path:
        found = list(self.out.glob("members/*/checkpoints/last.pt"))
        return found[0] if found else self.out / "absent"


def saved_epoch(path: Path) -> int:
    from ensemble_core.train.checkpoint import load_checkpoint
    try:
        return load_checkpoint(path)["epoch"] if path.is_file() else -2
    except Exception:  # noqa: BLE001 - polling a file being replaced
        return -2


@pytest.fixture
def gated_run(demo_dir, tmp_path):
    run = GatedRun(tmp_path, demo_dir)
    yield run
    run.kill()


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_exits_130_and_the_rerun_resumes(gated_run):
    from ensemble_core.train.checkpoint import load_checkpoint
    run = gated_run
    run.gate.touch()                                   # the first training step of epoch 1 waits
    run.start()
    run.wait_for(run.waiting.exists, "training step waiting at the gate")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(run.seen.exists, "stop request seen by the training step")
    run.gate.unlink()                                  # the step finishes; the loop stops before the next one
    status, out, err = run.finish()
    assert status == 130, out + err
    assert "Traceback" not in err, err
    assert "run stopped (SIGINT)" in err and "1 saved a last checkpoint" in err
    assert f"Resume by running the same command again (same out_dir: {run.out.resolve()})" in err
    member = run.member()
    assert not (member / DONE_FILE).exists()
    stopped = load_checkpoint(member / "checkpoints" / "last.pt")
    assert stopped["epoch"] == -1 and stopped["partial"]["epoch"] == 0 and stopped["partial"]["step"] == 1

    rerun = subprocess.run([sys.executable, str(run.script)], cwd=run.script.parent, env=run.env,
                           capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((member / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 0 and summary["resumed_from_step"] == 1
    assert summary["epochs_run"] == EPOCHS and (member / DONE_FILE).is_file()
    assert (run.out / "submission.csv").is_file()


@pytest.mark.slow
def test_a_second_signal_stops_at_once_without_a_new_checkpoint(gated_run):
    run = gated_run
    run.start()
    run.wait_for(lambda: saved_epoch(run.last()) >= 0, "checkpoint of epoch 1")
    run.gate.touch()                                   # a step of a later epoch waits at the gate
    run.wait_for(run.waiting.exists, "training step waiting at the gate")
    last = run.last()
    kept = hashlib.sha256(last.read_bytes()).hexdigest()
    run.proc.send_signal(signal.SIGTERM)               # first: asks for a checkpoint at the next step ...
    run.wait_for(run.seen.exists, "stop request seen by the training step")
    run.proc.send_signal(signal.SIGINT)                # ... which never comes: the second stops at once
    run.gate.unlink()   # were the second signal ignored, the step would end and the stop save a new checkpoint
    status, out, err = run.finish()
    assert status == 130, out + err
    assert "Traceback" not in err, err
    assert "stopped at once on a second signal (SIGINT)" in err and "no new checkpoint" in err
    assert f"Resume by running the same command again (same out_dir: {run.out.resolve()})" in err
    assert hashlib.sha256(last.read_bytes()).hexdigest() == kept, "a checkpoint was written after the 2nd signal"
    assert not (run.member() / DONE_FILE).exists() and not list(run.out.glob("members/*/checkpoints/*.tmp"))
