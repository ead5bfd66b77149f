"""Quality of a recipe on a data set: per-member validation F1, ensemble out-of-fold F1, eval F1
against ``eval/answers.csv``, accuracy, per-task accuracy and wall time; appended to RESULTS.md.

    python benchmarks/quality.py                                   # recipes/best.py on /tmp/maskproxy, preset auto
    python benchmarks/quality.py --recipe recipes/full.py --preset seed \\
        --set defaults.epochs=3 --set tasks.0.backbone.params.pretrained=false ...
    python benchmarks/quality.py --tiny                            # CPU smoke: demo data, tiny backbones, seconds

Overrides (``--set FIELD=VALUE``, VALUE parsed as JSON when it parses, else kept as text) are dotted
recipe fields, exactly as ``fire recipes/<name>.py run --FIELD=VALUE``. Eval answers are only read
to *report* the eval figures; nothing here tunes on them. Every table says whether the backbones
started from scratch or from pretrained weights, and which data was used.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import (BASELINE_NOTE, DEFAULT_DATA, REPO, data_label, demo_data, device_kind,  # noqa: E402
                         load_recipe_module, results_module, tiny_recipe, weights_label)
from ensemble_core.atomic import atomic_write_text  # noqa: E402


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"error: --set {pair!r}: expected FIELD=VALUE, e.g. --set defaults.epochs=3")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def eval_scores(submission: Path | None, data_dir: Path, out_dir: Path) -> dict[str, Any] | None:
    answers = data_dir / "eval" / "answers.csv"
    if submission is None or not answers.is_file():
        return None
    from ensemble_core.ensemble.scoring import score
    return score(submission, answers, out_dir)


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| member | task | backbone | split | val images | val macro F1 | val accuracy |",
             "|---|---|---|---:|---:|---:|---:|"]
    for m in result["members"]:
        if m.get("refit"):
            lines.append(f"| {m['run_name']} | {m['task']} | {m['backbone']} | {m['split']} (refit) | 0 | n/a | n/a |")
            continue
        lines.append(f"| {m['run_name']} | {m['task']} | {m['backbone']} | {m['split']} | {m['n_val_images']} | "
                     f"{m['val_macro_f1']:.4f} | {m['val_accuracy']:.4f} |")
    oof, ev = result["oof"], result["eval"]
    fa = oof["factor_accuracy"]
    lines += ["", "| measure | out of fold (train people) | eval (eval/answers.csv) |", "|---|---:|---:|",
              f"| images | {oof['n_images']} | {ev['n'] if ev else 'n/a'} |",
              f"| macro F1 (18 classes) | {_f(oof['macro_f1'])} | {_f(ev and ev['macro_f1'])} |",
              f"| accuracy | {_f(oof['accuracy'])} | {_f(ev and ev['accuracy'])} |"]
    for t in ("mask", "gender", "age"):
        lines.append(f"| {t} accuracy | {_f(fa[t])} | {_f(ev and ev['task_accuracy'][t])} |")
    lines += ["", "| run | value |", "|---|---|",
              f"| recipe / preset | {result['recipe']} / {result['preset']} |",
              f"| members (trained / reused) | {result['trained']} / {result['reused']} |",
              f"| voter | {result['voter']} |",
              f"| weights | {result['weights']} |",
              f"| data | {result['data']} |",
              f"| device | {result['device']} |",
              f"| overrides | {result['overrides'] or 'none'} |",
              f"| wall time, whole recipe incl. data check + decode (s) | {result['wall_s']:.1f} |"]
    return lines


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def run_quality(recipe_path: str, data_dir: Path | None, out_dir: Path, preset: str | None,
                overrides: dict[str, Any], tiny: bool, quiet: bool) -> dict[str, Any]:
    from ensemble_core.pipeline import run_recipe
    from ensemble_core.presets import resolve_preset
    from ensemble_core.recipe import Recipe

    module = load_recipe_module(recipe_path)
    chosen = resolve_preset("small" if tiny and preset is None else preset)
    data = module.recipe(chosen.name)
    if tiny:
        data = tiny_recipe(data)
    if overrides:
        data = Recipe.from_dict(data).override(**overrides).to_dict()
    if data_dir is None:
        data_dir = demo_data(out_dir.parent / "demo-data") if tiny else DEFAULT_DATA
    data_dir = Path(data_dir)
    start = time.perf_counter()
    result = run_recipe(data, data_dir=data_dir, out_dir=out_dir, quiet=quiet, preset=chosen.name,
                        data_note=data_label(data_dir, tiny))
    wall = time.perf_counter() - start
    members = Recipe.from_dict(data).plan()
    metrics = result.metrics
    return {"recipe": module.NAME, "preset": chosen.name + (" (tiny)" if tiny else ""), "members": metrics["members"],
            "oof": metrics["oof"], "eval": eval_scores(result.submission, data_dir, out_dir),
            "voter": json.dumps(metrics["voter"]), "weights": weights_label([m.backbone for m in members]),
            "data": data_label(data_dir, tiny), "device": device_kind(), "trained": result.trained,
            "reused": result.skipped, "wall_s": wall, "out_dir": str(out_dir),
            "overrides": ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "best.py"), help="recipe file (default recipes/best.py)")
    ap.add_argument("--data", default=None, help=f"data folder (default {DEFAULT_DATA}; demo data with --tiny)")
    ap.add_argument("--preset", default=None, help="auto (default), seed or small")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="dotted recipe override, repeatable (e.g. --set defaults.epochs=3)")
    ap.add_argument("--out", default=None, help="run folder (default: a new temporary folder)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke size: demo data, tiny backbones, 1 epoch")
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads per member (sets defaults.threads; the recipe's own default is 1)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.overrides)
    if args.threads:
        overrides["defaults.threads"] = args.threads
    work = Path(tempfile.mkdtemp(prefix="quality-"))
    out_dir = Path(args.out) if args.out else work / "run"
    result = run_quality(args.recipe, Path(args.data) if args.data else None, out_dir, args.preset,
                         overrides, args.tiny, args.quiet)
    lines = table(result)
    print("\n".join(lines))
    print(f"run folder: {result['out_dir']}" + ("" if args.out else " (temporary, removed; pass --out to keep it)"))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1, default=str))
    if not args.no_append:
        size = "tiny CPU smoke" if args.tiny else result["device"]
        results_module().append_results(
            f"quality: {result['recipe']} ({result['preset']}) on {Path(result['data'].split(' (')[0]).name} — "
            f"{size}, {result['weights'].split(' (')[0]}", lines,
            notes=f"{result['weights']}; data: {result['data']}; {BASELINE_NOTE}")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
