"""Voters x decision rules on one finished run, from its cached predictions (no training), chosen on OOF only.

    python benchmarks/decisions.py RUN_DIR [--voters soft,weighted_soft,stacking,greedy_selection]
                                   [--decisions argmax,class_offsets,prior_power,factor_offsets] [--append]

For every voter the ensemble is rebuilt from the members' ``oof.npz`` / ``eval.npz``; its out-of-fold (OOF)
macro F1 is **cross-fitted by person** (``stacking`` / ``greedy_selection`` cross-fit themselves; ``soft``
has nothing to fit; other voters are refitted here on the OOF images of k-1 person folds and scored on the
held-out fold — single-task recipes only). For every decision rule, ``decide`` gives its cross-fitted OOF
macro F1, whether it would be applied, and its eval prediction. When the data folder has
``eval/answers.csv``, the eval macro F1 is printed beside the OOF figure; it is never used to choose.
"chosen on OOF" marks the voter with the best cross-fitted OOF figure and, for it, the decision the
pipeline would apply (the applied rule with the best cross-fitted figure; arg-max when none is applied).
Nothing is written to RUN_DIR.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_log import append_results  # noqa: E402


def crossfit_voter_oof(ens, voter_ref, registry, seed: int, folds: int = 5) -> np.ndarray | None:
    """(N, 18) OOF probabilities of a voter refitted without each held-out person fold (single-task recipes)."""
    from ensemble_core.ensemble.assemble import build_voter, fit_voter
    from ensemble_core.ensemble.decision import person_folds
    from ensemble_core.ensemble.predictions import stack

    if len(ens.tasks) != 1:
        return None
    tv = next(iter(ens.tasks.values()))
    if tv.task.num_original_classes != 18:
        return None
    probs = stack(tv.members, tv.train_ids, "oof")
    rows = ~np.isnan(probs).all(axis=2).all(axis=0)
    persons = ens_persons[rows]
    fold = np.full(len(rows), -1)
    fold[rows] = person_folds(persons, folds, seed)
    out = np.full((len(rows), 18), np.nan)
    for k in range(folds):
        fit = probs.copy()
        fit[:, fold == k] = np.nan
        fit[:, fold < 0] = np.nan
        voter = build_voter(voter_ref, registry)
        fit_voter(voter, fit, tv.truth, tv.groups, ens_persons)
        held = probs.copy()
        held[:, fold != k] = np.nan
        voted = voter(held)
        out[fold == k] = voted[fold == k]
    return out


ens_persons: np.ndarray = np.zeros(0)


def main(argv=None) -> int:
    global ens_persons
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.ensemble.assemble import build_ensemble
    from ensemble_core.ensemble.decision import decide, eval_answers
    from ensemble_core.metrics import macro_f1
    from ensemble_core.pipeline import load_recipe_file, read_run_info, resolve_data_dir
    from ensemble_core.manager import get_registry

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--voters", default="soft")
    ap.add_argument("--decisions", default="argmax,class_offsets,prior_power,factor_offsets",
                    help="comma-separated rules; NAME@nomatch = without the eval temperature (shown, never chosen)")
    ap.add_argument("--title", default=None)
    ap.add_argument("--notes", default="")
    ap.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)

    run = Path(args.run_dir).resolve()
    recipe = load_recipe_file(run)
    info = read_run_info(run)
    data_dir = resolve_data_dir(None, run)
    dataset = load_dataset(data_dir, exclude=info.get("exclude", []))
    registry = get_registry()
    ens_persons = dataset.train.reset_index(drop=True)["person"].astype(str).to_numpy()
    lines = ["| voter | OOF macro F1 of the vote (cross-fitted) | decision | OOF macro F1, cross-fitted | "
             "bootstrap support | applied | T | eval macro F1 (answers, reported only) | chosen on OOF |",
             "|---|---:|---|---:|---:|---|---:|---:|---|"]
    results = []
    start = time.perf_counter()
    for voter in args.voters.split(","):
        ens = build_ensemble(recipe, recipe.plan(), run, dataset, registry, voter=voter)
        answers = eval_answers(data_dir, ens.eval_ids)
        rows = ens.oof_rows
        tv = next(iter(ens.tasks.values()))
        if voter == "soft" or getattr(tv.voter, "crossfit_oof", None) is not None:
            honest = ens.oof18
        else:
            honest = crossfit_voter_oof(ens, voter, registry, int(recipe.seed))
        vote_f1 = (None if honest is None else
                   macro_f1(ens.truth18[rows], honest[rows].argmax(axis=1), 18))
        for name in args.decisions.split(","):
            # NAME@nomatch: the same rule without sharpening eval to the OOF confidence (T = 1)
            base_name, _, variant = name.partition("@")
            ref = {"name": base_name, "params": {"match_confidence": False} if variant == "nomatch" else {}}
            out = decide(ref, ens.oof18, ens.truth18, ens_persons, ens.eval18, ens.eval_ids, registry=registry,
                         seed=int(recipe.seed))
            ev = None if answers is None else macro_f1(answers, out.eval_pred_rule, 18)
            oof = out.argmax_oof_f1 if base_name == "argmax" else out.crossfit_oof_f1
            results.append({"voter": voter, "vote_f1": vote_f1, "decision": name, "oof": oof,
                            "support": out.bootstrap_support, "applied": out.applied == base_name, "T": out.temperature,
                            "eval": ev})
        print(f"[decisions] {voter}: done at {time.perf_counter() - start:.0f}s", flush=True)
    # choose on OOF only
    best_voter = max((r for r in results if r["vote_f1"] is not None), key=lambda r: r["vote_f1"])["voter"]
    mine = [r for r in results if r["voter"] == best_voter and r["applied"] and "@" not in r["decision"]]
    best_rule = max(mine, key=lambda r: (r["oof"], r["decision"] == "argmax"))["decision"]
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    for r in results:
        chosen = "**yes**" if (r["voter"], r["decision"]) == (best_voter, best_rule) else ""
        support = "n/a" if r["support"] is None else f"{r['support']:.0%}"
        lines.append(f"| {r['voter']} | {fmt(r['vote_f1'])} | {r['decision']} | {fmt(r['oof'])} | {support} | "
                     f"{'yes' if r['applied'] else 'no'} | {r['T']:.3f} | {fmt(r['eval'])} | {chosen} |")
    base = next((r for r in results if r["voter"] == "soft" and r["decision"] == "argmax"), None)
    pick = next(r for r in results if (r["voter"], r["decision"]) == (best_voter, best_rule))
    if base and base["eval"] is not None and pick["eval"] is not None:
        lines += ["", f"Chosen on OOF: voter `{best_voter}`, decision `{best_rule}`: eval macro F1 "
                      f"{pick['eval']:.4f} vs soft + arg-max {base['eval']:.4f} ({pick['eval'] - base['eval']:+.4f})."]
    n_members = sum(len(tv.members) + len(tv.refit) for tv in ens.tasks.values())
    lines += ["", f"Run: `{run}` (recipe `{recipe.name}`, {n_members} members, data `{data_dir}`); "
                  f"{int(rows.sum())} OOF images, {0 if ens.eval_ids is None else len(ens.eval_ids)} eval images; "
                  f"{time.perf_counter() - start:.0f} s for the whole table."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        append_results(args.title or f"decisions and voters on cached predictions: {recipe.name}", lines,
                       notes=args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
