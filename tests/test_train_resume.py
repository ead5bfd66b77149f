"""A member killed with SIGKILL mid-training resumes from its last saved epoch and finishes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers_train import load_demo, person_split, tiny_member

torch = pytest.importorskip("torch")

EPOCHS = 6


def _saved_epoch(path) -> int:
    from ensemble_core.train.checkpoint import load_checkpoint
    try:
        return load_checkpoint(path)["epoch"] if path.is_file() else -1
    except Exception:  # noqa: BLE001 - only ever a complete file is there; be safe while polling
        return -1


@pytest.mark.slow
def test_sigkill_mid_member_then_rerun_resumes_from_last_epoch(demo_dir, tmp_path):
    from ensemble_core.train.__main__ import write_job
    ds = load_demo(demo_dir)
    train_rows, val_rows = person_split(ds.train)
    member = tiny_member("mask", epochs=EPOCHS)
    run_dir = tmp_path / "members" / member.run_name
    job = write_job(tmp_path / "job.json", member.to_dict(), str(demo_dir), train_rows, val_rows, str(run_dir))
    cmd = [sys.executable, "-m", "ensemble_core.train", str(job), "--quiet", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    last = run_dir / "checkpoints" / "last.pt"

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while _saved_epoch(last) < 1:
            assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stdout.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint of epoch >= 1 within 120 s"
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

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == killed_at + 1  # not zero: epochs 0..killed_at are not retrained
    assert summary["epochs_run"] == EPOCHS and (run_dir / "DONE").is_file()
    after = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in after] == list(range(EPOCHS))
    for old, new in zip(before[:killed_at + 1], after):
        assert old == new, "epochs finished before the kill must be kept as they were"
    assert not list(run_dir.rglob("*.tmp"))
