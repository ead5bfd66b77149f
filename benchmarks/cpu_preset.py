"""The best.py CPU preset on maskproxy: the default run's wall time, load, OOF and eval figures, and the
out-of-fold evidence behind each setting (issue 13, item 4); appended to RESULTS.md.

    fire recipes/best.py run --data_dir /tmp/maskproxy --out_dir RUN > RUN.log 2>&1   # the default, timed
    python benchmarks/cpu_preset.py RUN --log RUN.log --loadlog LOADS.txt \\
        --baseline OLD_RUN --proxy P1 --proxy P2 --views P1

RUN is a finished run folder of the default CPU preset; RUN.log holds what ``fire ... run`` printed
(its ``seconds:`` line is the wall time of the whole recipe); LOADS.txt holds ``uptime`` lines taken
while it ran. OLD_RUN: the previous default's run folder. Each ``--proxy`` is a one-member run on one
fixed person split (the same split for every proxy), compared on its out-of-fold macro F1; ``--views``
re-predicts that proxy member's validation people with other test-time views / eval sizes (no
training). Eval answers (``eval/answers.csv``) are scored for the report only: nothing is chosen on them.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import results_module  # noqa: E402

VIEW_VARIANTS = [
    ("hflip (kept)", {"tta": ["hflip"]}),
    ("no TTA", {"tta": []}),
    ("shifts(2 px, flips): 9 views", {"tta": [{"name": "shifts", "params": {"pixels": 2}}]}),
    ("hflip, eval_image_size 56x56", {"tta": ["hflip"], "eval_image_size": [56, 56]}),
]


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def members(run: Path) -> list[dict]:
    out = []
    for d in sorted((run / "members").iterdir()):
        if not (d / "summary.json").is_file():
            continue
        s = load_json(d / "summary.json")
        curve = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
        out.append({"name": d.name, "summary": s, "curve": curve})
    return out


def eval_f1(run: Path, data_dir: Path) -> float | None:
    answers = data_dir / "eval" / "answers.csv"
    if not answers.is_file() or not (run / "submission.csv").is_file():
        return None
    from ensemble_core.ensemble.scoring import score
    return float(score(run / "submission.csv", answers, run)["macro_f1"])


def run_figures(run: Path) -> dict:
    m = load_json(run / "metrics.json")
    recipe = load_json(run / "recipe.json")
    data_dir = Path(load_json(run / "run.json")["data_dir"])
    d = m.get("decision") or {}
    return {"recipe": recipe, "data_dir": data_dir, "oof_n": m["oof"]["n_images"],
            "oof_argmax": m["oof"]["macro_f1"], "decision": d.get("applied"),
            "oof_decision": d.get("crossfit_macro_f1"), "support": d.get("bootstrap_support"),
            "eval": eval_f1(run, data_dir), "members": members(run)}


def wall_seconds(log: Path | None) -> float | None:
    if log is None:
        return None
    found = re.findall(r"^seconds:\s+([0-9.]+)", log.read_text(errors="replace"), flags=re.M)
    return float(found[-1]) if found else None


def loads(path: Path | None) -> str:
    if path is None or not path.is_file():
        return "not recorded"
    one = [float(x) for x in re.findall(r"load average: ([0-9.]+),", path.read_text())]
    if not one:
        return "not recorded"
    return (f"1-minute load average over the run: min {min(one):.2f}, median {float(np.median(one)):.2f}, "
            f"max {max(one):.2f} ({len(one)} samples, one a minute; 2 cores)")


def epochs_of(curve: list[dict], key: str, fmt: str) -> str:
    return " ".join(format(e[key], fmt) for e in curve)


def member_setting(recipe: dict) -> str:
    df = recipe["defaults"]
    split = recipe["split"]
    return (f"{recipe['tasks'][0]['backbone']['name']} {df['image_size'][0]}x{df['image_size'][1]}, "
            f"{df['epochs']} epochs, batch {df['batch_size']}, split {split['name']} "
            f"{json.dumps(split.get('params', {}))}, executor {recipe['executor']['name']}, "
            f"threads {df.get('threads', 1)}, channels_last {df.get('channels_last', 'auto')}")


def view_rows(proxy: Path) -> list[str]:
    import torch

    from ensemble_core.data.layout import load_dataset
    from ensemble_core.data.splits import make_splits
    from ensemble_core.manager import get_registry
    from ensemble_core.recipe import Member
    from ensemble_core.train.member import MemberTrainer
    from ensemble_core.train.predict import score

    torch.set_num_threads(1)
    recipe = load_json(proxy / "recipe.json")
    ds = load_dataset(load_json(proxy / "run.json")["data_dir"])
    registry = get_registry()
    splits = make_splits(ds.train, recipe["split"], recipe["seed"], proxy / "splits.json", registry=registry)
    rows = []
    for mdir in sorted((proxy / "members").iterdir()):
        cfg = load_json(mdir / "config.json")["member"]
        split = splits[cfg["split_index"]]
        for label, over in VIEW_VARIANTS:
            spec = json.loads(json.dumps(cfg))
            spec["fields"].update(over)
            t = MemberTrainer(Member.from_dict(spec), ds, split, mdir, registry, quiet=True)
            t.load_best()
            probs = t.predict(t.loaders.val_loader())
            sc = score(probs, t.samples.val_truth, t.class_names)
            nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(probs)), t.samples.val_truth], 1e-9, 1))))
            rows.append(f"| {mdir.name} | {label} | {len(probs)} | {sc['macro_f1']:.4f} | {sc['accuracy']:.4f} | "
                        f"{nll:.4f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--log", type=Path)
    ap.add_argument("--loadlog", type=Path)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--proxy", type=Path, action="append", default=[])
    ap.add_argument("--views", type=Path)
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading of the tables (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    new = run_figures(args.run)
    wall = wall_seconds(args.log)
    lines = ["| | this run (default CPU preset) |" + (" previous default |" if args.baseline else ""),
             "|---|---|" + ("---|" if args.baseline else "")]
    old = run_figures(args.baseline) if args.baseline else None

    def row(label: str, fn) -> None:
        lines.append(f"| {label} | {fn(new)} |" + (f" {fn(old)} |" if old else ""))

    def f4(x) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    row("members", lambda r: member_setting(r["recipe"]))
    row("out-of-fold images", lambda r: f"{r['oof_n']} of 18900")
    row("OOF macro F1, soft vote + arg-max", lambda r: f4(r["oof_argmax"]))
    def pct(x) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    row("OOF macro F1 of the decision (cross-fitted)",
        lambda r: f"{f4(r['oof_decision'])} ({r['decision']} applied; bootstrap support {pct(r['support'])})")
    row("eval macro F1 (answers; reported only)", lambda r: f4(r["eval"]))
    wall_text = "n/a" if wall is None else f"{wall:.0f}"
    lines.append(f"| wall time, whole `fire recipes/best.py run` (s) | {wall_text} |"
                 + (" not timed here (issue 13: about 21 min) |" if old else ""))
    lines.append(f"| load while it ran | {loads(args.loadlog)} |" + (" |" if old else ""))

    lines += ["", "Members of this run (per-epoch validation macro F1; images/s per member process):", "",
              "| member | fold | val images | val macro F1 by epoch | best | images/s by epoch | member seconds |",
              "|---|---:|---:|---|---:|---|---:|"]
    for m in new["members"]:
        s, c = m["summary"], m["curve"]
        lines.append(f"| {m['name']} | {s['split_index']} | {s['n_val']} | "
                     f"{epochs_of(c, 'macro_f1', '.3f')} | {s['best_val_macro_f1']:.4f} | "
                     f"{epochs_of(c, 'images_per_s', '.0f')} | {s['seconds_this_process']:.0f} |")

    if args.proxy:
        lines += ["", "Proxies (one resnet10t member each on the same 25% person split; OOF = its validation "
                  "people, hflip TTA):", "",
                  "| proxy run | image size | epochs | val macro F1 by epoch | OOF macro F1 | OOF images |",
                  "|---|---|---:|---|---:|---:|"]
        for p in args.proxy:
            r = run_figures(p)
            df = r["recipe"]["defaults"]
            c = r["members"][0]["curve"]
            lines.append(f"| {p} | {df['image_size'][0]}x{df['image_size'][1]} | {df['epochs']} | "
                         f"{epochs_of(c, 'macro_f1', '.3f')} | {r['oof_argmax']:.4f} | {r['oof_n']} |")
    if args.views:
        lines += ["", f"Test-time views of the proxy member in {args.views} (re-predicted, no training):", "",
                  "| member | views | images | OOF macro F1 | OOF accuracy | OOF log loss |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += view_rows(args.views)
    if args.reading:
        lines += ["", *args.reading.read_text().rstrip().splitlines()]
    lines += ["", f"{time.perf_counter() - started:.0f} s for this table."]
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        results_module().append_results("best.py small run: the CPU preset on maskproxy — CPU, from scratch",
                                        lines, args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
