"""One CPU member on the demo data: how far does train_member get in a couple of minutes?

Builds the demo data (competition layout), splits people 80/20, trains one member with
``train_member`` and reports validation (out-of-fold) and eval macro F1 over the task's original
classes next to chance (macro F1 of the truth against a random permutation of itself, i.e. a
prediction with the right class frequencies and no signal), plus wall-clock and CPU seconds.

    python benchmarks/train_member_demo.py [--task all18] [--backbone resnet10t] [--epochs 8] [--append]
"""
from __future__ import annotations

from ensemble_core.manager import get_registry

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def chance_macro_f1(truth: np.ndarray, n_classes: int, repeats: int = 200) -> float:
    from ensemble_core.metrics import macro_f1
    rng = np.random.default_rng(0)
    return float(np.mean([macro_f1(truth, rng.permutation(truth), n_classes) for _ in range(repeats)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None,
                    help="data folder, used as it is (never rebuilt); default: fresh demo data in a temp folder")
    ap.add_argument("--task", default="all18")
    ap.add_argument("--backbone", default="resnet10t")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--image-size", type=int, nargs=2, default=(64, 48))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (shared CPU: 1 is often fastest)")
    ap.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()

    from ensemble_core.data.demo import make_demo
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.metrics import macro_f1
    from ensemble_core.labels import N_CLASSES
    from ensemble_core.recipe import Recipe
    from ensemble_core.train import train_member

    work = Path(tempfile.mkdtemp(prefix="train-demo-"))
    if args.data:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_setup import given_data
        data = given_data(args.data)
    else:
        data = make_demo(work / "demo")
    ds = load_dataset(data)
    persons = np.array(sorted(ds.train["person"].unique()))
    val_people = set(np.random.default_rng(0).choice(persons, len(persons) // 5, replace=False).tolist())
    is_val = ds.train["person"].isin(val_people).to_numpy()
    split = (np.flatnonzero(~is_val), np.flatnonzero(is_val))
    member = Recipe.from_dict({"name": "bench", "seed": 0, "split": {"name": "shuffle", "params": {"n_splits": 1}},
                               "tasks": [{"task": args.task, "backbone": args.backbone, "epochs": args.epochs,
                                          "batch_size": args.batch_size, "image_size": list(args.image_size),
                                          "augmentations": ["HorizontalFlip"],
                                          "optimizer": {"name": "adamw", "params": {"lr": args.lr}},
                                          "scheduler": "cosine", "threads": args.threads or 1}]}).plan()[0]
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    summary = train_member(member, ds, split, work / "members" / member.run_name, quiet=True, registry=get_registry())
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu

    oof = np.load(work / "members" / member.run_name / "oof.npz", allow_pickle=False)
    n_classes = oof["probs"].shape[1]
    rows = [("task / backbone", f"{args.task} / {args.backbone}"),
            ("train / val images", f"{summary['n_train']} / {summary['n_val']}"),
            ("epochs, image size, batch", f"{args.epochs}, {args.image_size[0]}x{args.image_size[1]}, "
                                          f"{args.batch_size}"),
            ("val macro F1 (best epoch, TTA hflip)", f"{summary['oof_macro_f1']:.4f}"),
            ("val accuracy", f"{summary['oof_accuracy']:.4f}"),
            ("val chance macro F1", f"{chance_macro_f1(oof['truth'], n_classes):.4f}")]
    answers = Path(data) / "eval" / "answers.csv"
    eval_path = work / "members" / member.run_name / "eval.npz"
    if n_classes == N_CLASSES and answers.is_file() and eval_path.is_file():
        ev = np.load(eval_path, allow_pickle=False)
        truth = pd.read_csv(answers).set_index("ImageID").loc[ev["image_id"], "ans"].to_numpy()
        rows += [("eval macro F1", f"{macro_f1(truth, ev['probs'].argmax(1), N_CLASSES):.4f}"),
                 ("eval chance macro F1", f"{chance_macro_f1(truth, N_CLASSES):.4f}")]
    rows += [("torch threads", str(__import__("torch").get_num_threads())),
             ("best epoch", str(summary["best_epoch"] + 1)),
             ("train_member wall time (s)", f"{wall:.1f}"), ("train_member CPU time (s)", f"{cpu:.1f}"),
             ("peak RSS (MiB)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")]
    lines = ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in summary.items() if k != "oof_per_class_f1"}))
    if args.append:
        from results_log import append_results
        append_results("One CPU member on the demo data (train_member)", lines,
                       notes="shared 2-core machine: wall time depends on other load; CPU time is given too")


if __name__ == "__main__":
    main()
