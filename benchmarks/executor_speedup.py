"""Executor speed-up: the same recipe's members trained by ``local`` vs ``process`` (N workers).

Trains ``recipes/single18.py`` (preset ``small``: resnet10t from scratch at 64x48 on the demo data)
with ``--splits`` members and ``--epochs`` epochs, once per executor, each into a fresh run folder,
and reports wall time for the whole run (data check, member training, ensemble) and the speed-up
against local with one torch thread (the setting every executor uses for identical results).
It also checks that the submissions are byte-identical. Load averages are recorded because the
cores may be shared.

    python benchmarks/executor_speedup.py [--splits 4] [--epochs 2] [--workers 2] [--append]
    python benchmarks/executor_speedup.py --tiny      # seconds: test_resnet at 32x24, local 1 thread vs process
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run_once(build, data: Path, out: Path, executor: dict) -> dict:
    from ensemble_core.pipeline import run_recipe

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = run_recipe(build(), data_dir=data, out_dir=out, executor=executor, quiet=True)
    seconds = time.perf_counter() - start
    member_seconds = [r.seconds for r in result.members if r.status == "trained"]
    return {"seconds": seconds, "trained": result.trained, "member_seconds": member_seconds,
            "load": (load_before, os.getloadavg()[0]),
            "submission_sha1": hashlib.sha1(result.submission.read_bytes()).hexdigest()[:12]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=4, help="members (one per split)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=None,
                    help="data folder, used as it is (never rebuilt); default: fresh demo data in a temp folder")
    ap.add_argument("--tiny", action="store_true",
                    help="smoke size: test_resnet at 32x24 on small demo data, 2 members x 1 epoch, no 2-thread run")
    ap.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.tiny:
        args.splits, args.epochs = 2, 1

    from bench_setup import TINY_BACKBONES, TINY_IMAGE, demo_data, given_data, load_recipe_module
    from ensemble_core.data.demo import make_demo
    from results_log import append_results

    work = Path(tempfile.mkdtemp(prefix="executor-speedup-"))
    if args.data:
        data = given_data(args.data)
    else:
        data = demo_data(work / "demo") if args.tiny else make_demo(work / "demo")
    single18 = load_recipe_module("recipes/single18.py")
    tiny = {"tasks.0.backbone.name": TINY_BACKBONES[1], "defaults.load_size": list(TINY_IMAGE),
            "defaults.preprocess": [], "defaults.image_size": list(TINY_IMAGE)} if args.tiny else {}

    def build(threads: int = 1) -> dict:   # a member's torch threads are part of its config
        return single18.recipe("small", **{"split.params.n_splits": args.splits, "defaults.epochs": args.epochs,
                                           "defaults.threads": threads, **tiny})

    runs = [("local, 1 torch thread", "local", 1),
            *([] if args.tiny else [("local, 2 torch threads", "local", 2)]),
            (f"process, {args.workers} workers x 1 thread", {"name": "process", "params": {"workers": args.workers}},
             1)]
    measured = []
    for i, (label, executor, threads) in enumerate(runs):
        m = run_once(lambda: build(threads), data, work / f"run{i}", executor)
        measured.append((label, m))
        print(f"{label}: {m['seconds']:.1f} s (load {m['load'][0]:.1f} -> {m['load'][1]:.1f})", flush=True)
    base = measured[0][1]["seconds"]
    lines = ["| executor | members trained | wall s (whole run) | mean s per member (in its worker) | "
             "speed-up vs local 1 thread | load average before -> after | submission sha1 |",
             "|---|---:|---:|---:|---:|---|---|"]
    for label, m in measured:
        per = sum(m["member_seconds"]) / max(len(m["member_seconds"]), 1)
        lines.append(f"| {label} | {m['trained']} | {m['seconds']:.1f} | {per:.1f} | {base / m['seconds']:.2f}x | "
                     f"{m['load'][0]:.1f} -> {m['load'][1]:.1f} | {m['submission_sha1']} |")
    same = measured[0][1]["submission_sha1"] == measured[-1][1]["submission_sha1"]
    model = "test_resnet from scratch, 32x24 (--tiny)" if args.tiny else "resnet10t from scratch, 64x48"
    notes = (f"recipes/single18.py preset small ({model}), {args.splits} members x "
             f"{args.epochs} epochs on the demo data ({data}); process and local 1-thread submissions "
             f"{'identical' if same else 'DIFFER'}; {os.cpu_count()} cores shared with other jobs (load averages "
             f"in the table); process workers each load the data and decode their images (spawn start)")
    text = "\n".join(lines)
    print(text)
    if args.append:
        append_results("executor speed-up: process vs local (demo members)", lines, notes)


if __name__ == "__main__":
    main()
