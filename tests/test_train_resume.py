"""A member killed with SIGKILL mid-training resumes from its last saved epoch and ends exactly where a run
that was never stopped ends: the same eval.npz / oof.npz bytes, the same metrics and summary figures
(torch threads fixed to 1 in both runs; timings excepted)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ensemble_core.manager import get_registry

from helpers_proc import SUBPROCESS_DEADLINE_S, WAIT_DEADLINE_S
from helpers_train import load_demo, person_split, tiny_member

torch = pytest.importorskip("torch")

EPOCHS = 6
TIMING = {"images_per_s", "train_seconds"}                       # metrics.jsonl fields that measure time
NOT_COMPARED = {"seconds_this_process", "resumed_from_epoch", "resumed_from_step"}   # summary.json
# every source of randomness a member has: per-sample augmentations, batch augmentation, EMA, a scheduler
RANDOM_FIELDS = dict(augmentations=["HorizontalFlip", "HueSaturationValue"], batch_augmentation="cutmix",
                     ema_decay=0.9, scheduler={"name": "cosine", "params": {"warmup_epochs": 1}})


def _saved_epoch(path) -> int:
    from ensemble_core.train.checkpoint import load_checkpoint
    try:
        return load_checkpoint(path)["epoch"] if path.is_file() else -1
    except Exception:  # noqa: BLE001 - only ever a complete file is there; be safe while polling
        return -1


def member_outputs(run_dir: Path) -> dict:
    metrics = [{k: v for k, v in json.loads(x).items() if k not in TIMING}
               for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k not in NOT_COMPARED}
    return {"metrics": metrics, "summary": summary,
            **{f"{name}.{key}": np.load(run_dir / f"{name}.npz")[key]
               for name in ("oof", "eval") for key in ("image_id", "probs")}}


def assert_same_outputs(resumed: dict, uninterrupted: dict) -> None:
    for key in ("oof.image_id", "eval.image_id"):
        np.testing.assert_array_equal(resumed[key], uninterrupted[key])
    for key in ("oof.probs", "eval.probs"):
        assert resumed[key].tobytes() == uninterrupted[key].tobytes(), \
            f"{key}: max difference {np.abs(resumed[key] - uninterrupted[key]).max()}"
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["summary"] == uninterrupted["summary"]


@pytest.mark.slow
def test_sigkill_mid_member_then_rerun_gives_what_an_uninterrupted_run_gives(demo_dir, tmp_path):
    from ensemble_core.executors.__main__ import write_job
    ds = load_demo(demo_dir)
    train_rows, val_rows = person_split(ds.train)
    member = tiny_member("mask", epochs=EPOCHS, **RANDOM_FIELDS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(where: str) -> tuple[list[str], Path]:
        run_dir = tmp_path / where / "members" / member.run_name
        job = write_job(tmp_path / f"{where}.json", member.to_dict(), str(demo_dir), train_rows, val_rows,
                        str(run_dir))
        return [sys.executable, "-m", "ensemble_core.executors", str(job), "--quiet", "--device", "cpu"], run_dir

    cmd, run_dir = command("killed")
    last = run_dir / "checkpoints" / "last.pt"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT_DEADLINE_S
    try:
        while _saved_epoch(last) < 1:
            assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stdout.read().decode()}"
            assert time.monotonic() < deadline, f"no checkpoint of epoch >= 1 within {WAIT_DEADLINE_S} s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "DONE").exists(), "the member finished before the kill; the test proves nothing"
    killed_at = _saved_epoch(last)
    assert 1 <= killed_at < EPOCHS - 1
    before = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == killed_at + 1  # not zero: epochs 0..killed_at are not retrained
    assert summary["epochs_run"] == EPOCHS and (run_dir / "DONE").is_file()
    after = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in after] == list(range(EPOCHS))
    for old, new in zip(before[:killed_at + 1], after):
        assert old == new, "epochs finished before the kill must be kept as they were"
    assert not list(run_dir.rglob("*.tmp"))

    ref_cmd, ref_dir = command("uninterrupted")
    ref = subprocess.run(ref_cmd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert json.loads((ref_dir / "summary.json").read_text())["resumed_from_epoch"] is None
    assert_same_outputs(member_outputs(run_dir), member_outputs(ref_dir))


def test_a_stop_mid_epoch_then_resume_gives_what_an_uninterrupted_run_gives(demo_dir, tmp_path, monkeypatch):
    """The same promise for a requested stop in the middle of an epoch (SIGINT / SIGTERM): the resume
    continues that epoch at the next step with the same data, augmentations and random draws."""
    import ensemble_core.train.member as member_module
    from ensemble_core.stopping import MemberStopped
    from ensemble_core.train import train_member

    ds = load_demo(demo_dir)
    split = person_split(ds.train)
    member = tiny_member("mask", epochs=2, batch_size=8, **RANDOM_FIELDS)
    asked = []

    def stop_after_five_steps() -> bool:   # the loop asks before every step after the first
        asked.append(1)
        return len(asked) >= 5

    stopped = tmp_path / "stopped" / member.run_name
    monkeypatch.setattr(member_module, "stop_requested", stop_after_five_steps)
    with pytest.raises(MemberStopped, match="in epoch 1 after step 5"):
        train_member(member, ds, split, stopped, quiet=True, registry=get_registry())
    monkeypatch.setattr(member_module, "stop_requested", lambda: False)
    summary = train_member(member, ds, split, stopped, quiet=True, registry=get_registry())
    assert summary["resumed_from_epoch"] == 0 and summary["resumed_from_step"] == 5

    uninterrupted = tmp_path / "uninterrupted" / member.run_name
    train_member(member, ds, split, uninterrupted, quiet=True, registry=get_registry())
    assert_same_outputs(member_outputs(stopped), member_outputs(uninterrupted))


def test_a_stop_after_an_epoch_val_every_skipped_resumes_to_the_same_outputs(demo_dir, tmp_path, monkeypatch):
    """val_every 2 over 3 epochs: stopped after epoch 1, which was trained but not scored (no best epoch
    yet); the resume restores that progress and ends exactly where an uninterrupted run ends."""
    import ensemble_core.train.member as member_module
    from ensemble_core.stopping import MemberStopped
    from ensemble_core.train import train_member

    ds = load_demo(demo_dir)
    split = person_split(ds.train)
    member = tiny_member("mask", epochs=3, batch_size=8, val_every=2, **RANDOM_FIELDS)
    stopped = tmp_path / "stopped" / member.run_name

    def stop_once_epoch_one_is_logged() -> bool:
        metrics = stopped / "metrics.jsonl"
        return metrics.is_file() and len(metrics.read_text().splitlines()) >= 1

    monkeypatch.setattr(member_module, "stop_requested", stop_once_epoch_one_is_logged)
    with pytest.raises(MemberStopped, match="stopped on request after epoch 1 "):
        train_member(member, ds, split, stopped, quiet=True, registry=get_registry())
    first = json.loads((stopped / "metrics.jsonl").read_text().splitlines()[0])
    assert first["macro_f1"] is None and first["best_epoch"] == -1 and first["best_macro_f1"] is None
    assert not (stopped / "checkpoints" / "best.pt").exists()
    monkeypatch.setattr(member_module, "stop_requested", lambda: False)
    summary = train_member(member, ds, split, stopped, quiet=True, registry=get_registry())
    assert summary["resumed_from_epoch"] == 1 and summary["best_epoch"] in (1, 2)

    uninterrupted = tmp_path / "uninterrupted" / member.run_name
    train_member(member, ds, split, uninterrupted, quiet=True, registry=get_registry())
    assert_same_outputs(member_outputs(stopped), member_outputs(uninterrupted))
    lines = member_outputs(uninterrupted)["metrics"]
    assert [r["macro_f1"] is None for r in lines] == [True, False, False]
    assert [r["weights"] for r in lines][0] is None        # nothing compared on a skipped epoch
