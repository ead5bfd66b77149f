"""Soft votes of one-member proxy runs on one shared person split: what a vote of two backbone families gains
over one family, before a preset spends 20 minutes on it. Appended to RESULTS.md.

    python benchmarks/proxy_votes.py --root /tmp/px REF_A+REF_B A+B A+B+C ...

Each argument is a vote: proxy run folders (names under ``--root``) joined by ``+``, soft-voted with equal
weights (the mean of their out-of-fold 18-class probabilities, as ``soft`` votes one task's members). The first
vote is the reference; every other row gives its macro F1 (arg-max) minus the reference's and the share of
person-bootstrap replicates in which it is ahead. The compute column sums the members' training image-passes x
pixels and training seconds (one thread each; seconds compare only runs that shared the machine alike).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import results_module  # noqa: E402
from cpu_preset import oof_of, run_figures  # noqa: E402


def member_compute(run: Path) -> tuple[float, float]:
    r = run_figures(run)
    s, curve = r["members"][0]["summary"], r["members"][0]["curve"]
    h, w = r["recipe"]["defaults"]["image_size"]
    return (int(s["n_train"]) * len(curve) * h * w / 1e9,
            sum(e.get("train_seconds") or 0.0 for e in curve))


def main(argv: list[str] | None = None) -> int:
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.ensemble.decision import paired_support
    from ensemble_core.metrics import accuracy, macro_f1

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("votes", nargs="+", help="NAME[+NAME...] under --root; the first is the reference")
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    cache: dict[str, tuple] = {}

    def oof(name: str):
        if name not in cache:
            run = args.root / name
            if not run.is_dir():
                raise SystemExit(f"error: {run} is not a proxy run folder")
            cache[name] = (*oof_of(run), member_compute(run))
        return cache[name]

    first = args.votes[0].split("+")[0]
    ids, _, truth, _ = oof(first)
    train = load_dataset(run_figures(args.root / first)["data_dir"]).train
    person = train.set_index(train["image_id"].astype(str))["person"].astype(str).loc[ids.astype(str)].to_numpy()
    lines = ["| vote (soft, equal weights) | members | training image-passes x pixels, train seconds | OOF macro F1 | "
             "accuracy | difference (bootstrap support) |", "|---|---:|---:|---:|---:|---:|"]
    ref_pred = ref_f1 = None
    for spec in args.votes:
        names = spec.split("+")
        parts = [oof(n) for n in names]
        if any(not np.array_equal(p[0], ids) for p in parts):
            raise SystemExit(f"error: {spec}: its proxies' out-of-fold images differ; proxies must share one split")
        pred = np.mean([p[1] for p in parts], axis=0).argmax(1)
        f1 = macro_f1(truth, pred, 18)
        gpx, secs = sum(p[3][0] for p in parts), sum(p[3][1] for p in parts)
        if ref_pred is None:
            versus, ref_pred, ref_f1 = "reference", pred, f1
        else:
            versus = f"{f1 - ref_f1:+.4f} ({paired_support(truth, pred, ref_pred, person):.0%})"
        lines.append(f"| {' + '.join(names)} | {len(names)} | {gpx:.1f} G px, {secs:.0f} s | {f1:.4f} | "
                     f"{accuracy(truth, pred):.3f} | {versus} |")
    if args.reading:
        lines += ["", *args.reading.read_text().rstrip().splitlines()]
    lines += ["", f"{time.perf_counter() - started:.0f} s for this table."]
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results("proxy votes: one family or two, on one person split of maskproxy — CPU",
                                        lines, args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
