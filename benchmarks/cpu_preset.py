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

from ensemble_core.ensemble.decision import ANSWERS_FILE  # noqa: E402
from ensemble_core.runfolder import (CONFIG_FILE, EPOCHS_FILE, METRICS_FILE, OOF_FILE, RECIPE_FILE,  # noqa: E402
                                     RUN_FILE, SPLITS_FILE, SUBMISSION_FILE, SUMMARY_FILE, members_dir)

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
    for d in sorted(members_dir(run).iterdir()):
        if not (d / SUMMARY_FILE).is_file():
            continue
        s = load_json(d / SUMMARY_FILE)
        curve = [json.loads(line) for line in (d / EPOCHS_FILE).read_text().splitlines() if line.strip()]
        out.append({"name": d.name, "summary": s, "curve": curve})
    return out


def eval_f1(run: Path, data_dir: Path) -> float | None:
    answers = data_dir / ANSWERS_FILE
    if not answers.is_file() or not (run / SUBMISSION_FILE).is_file():
        return None
    from ensemble_core.ensemble.scoring import score
    return float(score(run / SUBMISSION_FILE, answers, run)["macro_f1"])


def run_figures(run: Path) -> dict:
    m = load_json(run / METRICS_FILE)
    recipe = load_json(run / RECIPE_FILE)
    data_dir = Path(load_json(run / RUN_FILE)["data_dir"])
    d = m.get("decision") or {}
    return {"recipe": recipe, "data_dir": data_dir, "oof_n": m["oof"]["n_images"],
            "oof_argmax": m["oof"]["macro_f1"], "decision": d.get("applied"),
            "requested": (d.get("requested") or {}).get("name"),
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
    text = path.read_text()
    one = [float(x) for x in re.findall(r"load average: ([0-9.]+),", text)]
    if not one:
        return "not recorded"
    clock = [int(h) * 3600 + int(m) * 60 + int(sec) for h, m, sec in re.findall(r"^\s*(\d\d):(\d\d):(\d\d) up", text,
                                                                             flags=re.M)]
    gaps = np.diff(clock) % 86400 if len(clock) == len(one) and len(clock) > 1 else []
    every = f"one every {float(np.median(gaps)):.0f} s" if len(gaps) else "uptime lines"
    return (f"1-minute load average over the run: min {min(one):.2f}, median {float(np.median(one)):.2f}, "
            f"max {max(one):.2f} ({len(one)} samples, {every}; 2 cores)")


def epochs_of(curve: list[dict], key: str, fmt: str) -> str:
    return " ".join("-" if e.get(key) is None else format(e[key], fmt) for e in curve)


def entry_fields(recipe: dict, i: int) -> dict:
    """Task entry ``i``'s member fields (the recipe's own merge: member defaults, ``defaults``, the entry)."""
    from ensemble_core.recipe import Recipe

    return Recipe.from_dict(recipe).member_fields(i)


def member_setting(recipe: dict) -> str:
    """Each task entry's backbone, size, epochs (and its own speed settings), then what they share."""
    split = recipe["split"]
    families = []
    for i in range(len(recipe["tasks"])):
        f = entry_fields(recipe, i)
        bb = f["backbone"] if isinstance(f["backbone"], str) else f["backbone"]["name"]
        families.append(f"{bb} {f['image_size'][0]}x{f['image_size'][1]}, {f['epochs']} epochs, channels_last "
                        f"{f.get('channels_last', 'auto')}"
                        + (f", val_every {f['val_every']}" if f.get("val_every", 1) != 1 else ""))
    df = recipe["defaults"]
    return ("; ".join(families) + f"; batch {df['batch_size']}, split {split['name']} "
            f"{json.dumps(split.get('params', {}))}, executor {recipe['executor']['name']}, "
            f"threads {df.get('threads', 1)}"
            + (f", refit {recipe['refit']}" if recipe.get("refit") else "")
            + (f" at share {recipe['refit_share']}" if recipe.get("refit") and "refit_share" in recipe else ""))


def field_diffs(ref, other, prefix: str = "") -> list[str]:
    """``FIELD=VALUE`` (dotted, the form ``fire ... --FIELD=VALUE`` takes) for each place ``other`` differs
    from ``ref``; recurses only where both sides are mappings (or lists of the same length)."""
    if isinstance(ref, dict) and isinstance(other, dict):
        return [d for k in sorted(set(ref) | set(other))
                for d in field_diffs(ref.get(k), other.get(k), f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(ref, list) and isinstance(other, list) and len(ref) == len(other) \
            and any(isinstance(x, dict) for x in ref):
        return [d for i, (x, y) in enumerate(zip(ref, other)) for d in field_diffs(x, y, f"{prefix}.{i}")]
    return [] if ref == other else [f"{prefix}={json.dumps(other)}"]


def recipe_changes(ref: dict, other: dict) -> str:
    """The member-facing recipe fields where ``other`` differs from ``ref``."""
    keys = ("seed", "split", "defaults", "tasks")
    diffs = field_diffs({k: ref.get(k) for k in keys}, {k: other.get(k) for k in keys})
    return "; ".join(diffs).replace("|", "\\|") or "(none)"


def oof_of(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's out-of-fold image ids (sorted), 18-class probabilities and truth (first member)."""
    z = np.load(sorted(members_dir(run).glob(f"*/{OOF_FILE}"))[0], allow_pickle=False)
    order = np.argsort(z["image_id"])
    return z["image_id"][order], z["probs"][order], z["truth"][order]


def proxy_rows(proxies: list[Path]) -> list[str]:
    from ensemble_core.ensemble.decision import paired_support

    from ensemble_core.data.layout import load_dataset

    ref = run_figures(proxies[0])
    ids, ref_probs, truth = oof_of(proxies[0])
    train = load_dataset(ref["data_dir"]).train            # the data layer says whose photo each image is
    person = train.set_index(train["image_id"].astype(str))["person"].astype(str).loc[ids.astype(str)].to_numpy()
    rows = []
    for i, p in enumerate(proxies):
        r = run_figures(p)
        c = r["members"][0]["curve"]
        if i == 0:
            versus = "reference"
        else:
            ids_p, probs, _ = oof_of(p)
            if not np.array_equal(ids_p, ids):
                raise SystemExit(f"{p}: its out-of-fold images differ from {proxies[0]}'s; proxies must share "
                                 f"one split")
            support = paired_support(truth, probs.argmax(1), ref_probs.argmax(1), person)
            versus = f"{r['oof_argmax'] - ref['oof_argmax']:+.4f} ({support:.0%})"
        changes = "(reference)" if i == 0 else recipe_changes(ref["recipe"], r["recipe"])
        decided = "n/a" if r["oof_decision"] is None else (
            f"{r['oof_decision']:.4f} ({r['requested']}, "
            f"{'applied' if r['decision'] == r['requested'] else 'not applied: arg-max kept'})")
        rows.append(f"| {p} | {changes} | {r['recipe']['defaults']['epochs']} | {compute(r)} | "
                    f"{epochs_of(c, 'macro_f1', '.3f')} | {r['oof_argmax']:.4f} | {versus} | {decided} | "
                    f"{r['oof_n']} |")
    return rows


def compute(r: dict) -> str:
    """Training compute of the proxy's member: image-passes x pixels (billions), and its seconds of training
    steps (one thread; the machine's other work slows them, so compare seconds only within one pass)."""
    s, curve = r["members"][0]["summary"], r["members"][0]["curve"]
    h, w = entry_fields(r["recipe"], 0)["image_size"]
    passes = int(s["n_train"]) * len(curve)
    seconds = sum(e.get("train_seconds") or 0.0 for e in curve)
    return f"{passes * h * w / 1e9:.2f} G px, {seconds:.0f} s"


def proxy_table(proxies: list[Path]) -> list[str]:
    return ["Proxies (one member each on the same person split; OOF = its validation people; the first "
            "row is the reference, each other row names the recipe fields it changes, its OOF macro F1 minus the "
            "reference's, and the share of person-bootstrap replicates in which it is ahead, as the "
            "decision rules are checked; the bootstrap resamples people, not training seeds):", "",
            "| proxy run | changes against the first proxy | epochs | training image-passes x pixels, train seconds | "
            "val macro F1 by epoch | OOF macro F1 | "
            "difference (bootstrap support) | OOF macro F1 of the decision rule, cross-fitted (rule, applied?) | "
            "OOF images |",
            "|---|---|---:|---:|---|---:|---:|---:|---:|", *proxy_rows(proxies)]


def proxies_only(args, started: float) -> int:
    if not args.proxy:
        raise SystemExit("give the default run's folder, or at least one --proxy")
    lines = proxy_table(args.proxy)
    if args.reading:
        lines += ["", *args.reading.read_text().rstrip().splitlines()]
    lines += ["", f"{time.perf_counter() - started:.0f} s for this table."]
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results("best.py small proxies: CPU preset settings on one person split of "
                                        f"maskproxy — CPU, {args.weights}", lines, args.notes)
    return 0


def view_rows(proxy: Path) -> list[str]:
    import torch

    from ensemble_core.data.layout import load_dataset
    from ensemble_core.data.splits import make_splits
    from ensemble_core.manager import get_registry
    from ensemble_core.recipe import Member
    from ensemble_core.train.member import MemberTrainer
    from ensemble_core.train.predict import score

    torch.set_num_threads(1)
    recipe = load_json(proxy / RECIPE_FILE)
    ds = load_dataset(load_json(proxy / RUN_FILE)["data_dir"])
    registry = get_registry()
    splits = make_splits(ds.train, recipe["split"], recipe["seed"], proxy / SPLITS_FILE, registry=registry,
                         refit=recipe.get("refit", 0))
    rows = []
    for mdir in sorted(members_dir(proxy).iterdir()):
        cfg = load_json(mdir / CONFIG_FILE)["member"]
        split = splits[cfg["split_index"]]
        if not len(split[1]):   # a refit member: no validation images to re-predict
            continue
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
    ap.add_argument("run", type=Path, nargs="?",
                    help="the default run's folder; left out, only the proxies' table (needs --proxy)")
    ap.add_argument("--log", type=Path)
    ap.add_argument("--loadlog", type=Path)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--run-label", default="this run (default CPU preset)", help="the run's column title")
    ap.add_argument("--baseline-label", default="previous default", help="the baseline's column title")
    ap.add_argument("--proxy", type=Path, action="append", default=[],
                    help="a one-member run on the shared proxy split; the first is the reference of the others")
    ap.add_argument("--baseline-wall", default="not timed here",
                    help="what to print as the previous default's wall time (its figure from RESULTS.md)")
    ap.add_argument("--views", type=Path)
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading of the tables (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--weights", default="from scratch",
                    help="how the members start, for the section title (e.g. 'pretrained EfficientNet-Lite0')")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.run is None:
        return proxies_only(args, started)

    new = run_figures(args.run)
    wall = wall_seconds(args.log)
    lines = [f"| | {args.run_label} |" + (f" {args.baseline_label} |" if args.baseline else ""),
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
                 + (f" {args.baseline_wall} |" if old else ""))
    lines.append(f"| load while it ran | {loads(args.loadlog)} |" + (" |" if old else ""))

    lines += ["", "Members of this run (per-epoch validation macro F1; images/s per member process):", "",
              "| member | fold | val images | val macro F1 by epoch | best | images/s by epoch | member seconds |",
              "|---|---:|---:|---|---:|---|---:|"]
    for m in new["members"]:
        s, c = m["summary"], m["curve"]
        best = "n/a (refit)" if s.get("refit") else f"{s['best_val_macro_f1']:.4f}"
        lines.append(f"| {m['name']} | {s['split_index']}{' (refit)' if s.get('refit') else ''} | {s['n_val']} | "
                     f"{epochs_of(c, 'macro_f1', '.3f')} | {best} | "
                     f"{epochs_of(c, 'images_per_s', '.0f')} | {s['seconds_this_process']:.0f} |")

    if args.proxy:
        lines += ["", *proxy_table(args.proxy)]
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
        results_module().append_results(f"best.py small run: the CPU preset on maskproxy — CPU, {args.weights}",
                                        lines, args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
