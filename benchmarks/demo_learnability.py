"""Can a tiny CNN learn the demo data? Trains a 4-layer CNN on the 18 classes of the demo
train split for a fixed number of epochs and scores the demo eval split (macro F1); prints the
wall-clock and CPU seconds it took (the machine may be shared, so both are given).

    python benchmarks/demo_learnability.py [DEMO_DIR] [--epochs 20] [--people 90] [--eval-people 30]

A DEMO_DIR that already holds data (train/train.csv) is used as it is, never rebuilt; --people and
--eval-people only size data the script makes (in an empty or missing DEMO_DIR, or a temp folder).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from sklearn.metrics import f1_score

from ensemble_core.data.demo import make_demo
from ensemble_core.data.images import ImageCache
from ensemble_core.data.layout import load_dataset


def tiny_cnn(num_classes: int) -> nn.Module:
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 96),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(96, num_classes))


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("demo_dir", nargs="?")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--people", type=int, default=90)
    ap.add_argument("--eval-people", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.demo_dir and (Path(args.demo_dir) / "train" / "train.csv").is_file():
        root = Path(args.demo_dir)   # a folder given with data in it is never rebuilt
    else:
        root = make_demo(args.demo_dir or tempfile.mkdtemp(prefix="demo"), args.people, args.eval_people)
    ds = load_dataset(root)
    answers = pd.read_csv(root / "eval" / "answers.csv", dtype={"ImageID": str})
    ev = ds.eval.merge(answers, left_on="image_id", right_on="ImageID")
    x_tr = to_tensor(ImageCache(ds.train["path"]).array)
    y_tr = torch.as_tensor(ds.train["label18"].to_numpy().copy())
    x_ev = to_tensor(ImageCache(ev["path"]).array)
    model = tiny_cnn(18)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(x_tr))
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            xb = x_tr[idx]
            if np.random.rand() < 0.5:
                xb = xb.flip(3)
            loss = nn.functional.cross_entropy(model(xb), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x_ev).argmax(1).numpy()
    truth = ev["ans"].to_numpy()
    f1 = f1_score(truth, pred, average="macro", labels=list(range(18)), zero_division=0)
    acc = (pred == truth).mean()
    line = (f"{len(x_tr)} train / {len(x_ev)} eval images ({args.people} / {args.eval_people} people, 64x48), "
            f"{epoch} epochs in {time.perf_counter() - t0:.0f} s wall / {time.process_time() - c0:.0f} s CPU on "
            f"{args.threads} threads (load average {os.getloadavg()[0]:.1f}): eval macro F1 {f1:.3f}, accuracy "
            f"{acc:.3f} (mask {np.mean(pred // 6 == truth // 6):.3f}, gender "
            f"{np.mean(pred // 3 % 2 == truth // 3 % 2):.3f}, age {np.mean(pred % 3 == truth % 3):.3f}); "
            f"chance macro F1 ~{1 / 18:.3f}")
    print(line)
    if not args.no_record:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        cmd = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/demo_learnability.py"] + sys.argv[1:])
        previous = results.read_text() if results.is_file() else ""
        with open(results, "a") as fh:
            if previous and not previous.endswith("\n\n"):
                fh.write("\n" if previous.endswith("\n") else "\n\n")
            fh.write(f"### demo learnability — {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n\n"
                     f"- command: `{cmd}` (tiny 4-layer CNN, 18 classes, plain torch, CPU)\n- {line}\n\n")

if __name__ == "__main__":
    main()
