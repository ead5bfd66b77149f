"""Refit members on proxies: is a member trained on more people worth more than one more fold member?

    python benchmarks/refit_proxies.py --refit P9 --refit Q6 ... \\
        --design "4 folds=F75a,F75b,F75c,F75d,F75e@4" --design "3 folds=F67a,F67b,F67c,F67d@3" [--share 0.5]

Every proxy is a one-member run whose validation people are the same fixed quarter of the training people,

    fire recipes/best.py run --data_dir /tmp/maskproxy --out_dir PROXY --quiet --executor local --refit 0 \
        --seed S --split='{name: shuffle, params: {n_splits: 1, val_fraction: 0.25, seed: 42, train_fraction: F}}'

(``split: shuffle`` with a pinned ``seed``, ``refit: 0``: one member); its training
people are all the others (``--refit`` proxies: what a refit member sees) or a stratified share of them
(``train_fraction``: what one fold member of a k-fold run sees, (k-1)/k of the people a refit member sees).
On those validation people, every image predicted by every proxy, the script reports the macro F1 of

- each ``--design``'s fold proxies soft-voted (what a k-fold run's eval vote is; with ``@k`` after the runs,
  the mean over every choice of k of them, so more training seeds than folds steady the figure), and
- the same vote blended with refit proxies, ``(1 - share) * folds + share * refit mean``, for one and two
  refit members (averaged over every choice of them among the ``--refit`` proxies),

so designs of equal compute can be compared on people none of the proxies trained on; nothing here reads
eval answers. A refit member has no validation people, so it keeps its last epoch's weights (the EMA's when
``ema_decay`` is set) where a proxy kept its best epoch (model or EMA) on the very images scored here: by
default the refit proxies are re-predicted from their last checkpoint's EMA (``--refit-weights last``; ``best``
reads their ``oof.npz`` as saved). Appended to RESULTS.md unless ``--no-append``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import results_module  # noqa: E402

from ensemble_core.metrics import macro_f1  # noqa: E402
from ensemble_core.runfolder import (CONFIG_FILE, OOF_FILE, RECIPE_FILE, RUN_FILE, SPLITS_FILE,  # noqa: E402
                                     SUMMARY_FILE, RunFolder, members_dir)


def load_proxy(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(image ids, 18-class probabilities, truth) of the proxy's one member, sorted by image id, and facts."""
    folders = [d for d in sorted(members_dir(run).iterdir()) if (d / OOF_FILE).is_file()]
    if len(folders) != 1:
        raise SystemExit(f"error: {run} has {len(folders)} finished member(s); a proxy has exactly one")
    with np.load(folders[0] / OOF_FILE, allow_pickle=False) as z:
        order = np.argsort(z["image_id"])
        ids, probs, truth = z["image_id"][order].astype(str), z["probs"][order].astype(np.float64), \
            z["truth"][order]
    recipe = json.loads((run / RECIPE_FILE).read_text())
    summary = json.loads((folders[0] / SUMMARY_FILE).read_text())
    params = (recipe.get("split") or {}).get("params") or {}
    facts = {"seed": recipe.get("seed"), "train_fraction": params.get("train_fraction", 1.0),
             "n_train": summary.get("n_train"), "oof": macro_f1(truth, probs.argmax(axis=1), probs.shape[1])}
    return ids, probs, truth, facts


def last_weights_probs(run: Path) -> np.ndarray:
    """The proxy member's validation probabilities (TTA views as trained) from its last checkpoint's EMA (the
    model's without EMA): the weights a refit member keeps. Rows sorted by image id, as :func:`load_proxy`."""
    import torch

    from ensemble_core.data.layout import load_dataset
    from ensemble_core.data.splits import make_splits
    from ensemble_core.manager import get_registry
    from ensemble_core.recipe import Member
    from ensemble_core.train.checkpoint import load_checkpoint
    from ensemble_core.train.member import MemberTrainer

    torch.set_num_threads(1)
    mdir = next(d for d in sorted(members_dir(run).iterdir()) if (d / OOF_FILE).is_file())
    recipe = json.loads((run / RECIPE_FILE).read_text())
    ds = load_dataset(json.loads((run / RUN_FILE).read_text())["data_dir"])
    registry = get_registry()
    splits = make_splits(ds.train, recipe["split"], recipe["seed"], run / SPLITS_FILE, registry=registry)
    member = Member.from_dict(json.loads((mdir / CONFIG_FILE).read_text())["member"])
    trainer = MemberTrainer(member, ds, splits[member.split_index], mdir, registry, quiet=True)
    ckpt = load_checkpoint(RunFolder(mdir).last)
    trainer.model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    probs = trainer.predict(trainer.loaders.val_loader()).astype(np.float64)
    ids = trainer.samples.val["image_id"].astype(str).to_numpy()
    return probs[np.argsort(ids)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refit", type=Path, action="append", default=[], required=True,
                    help="a proxy trained on every training person of the proxy split (repeat)")
    ap.add_argument("--design", action="append", default=[], required=True,
                    help='"LABEL=RUN,RUN,...[@K]": the fold proxies of one design; @K: average over every K of '
                         'them (repeat)')
    ap.add_argument("--share", type=float, action="append", default=None,
                    help="refit share(s) of the eval vote to report (default 0.25 0.5 0.75 1.0)")
    ap.add_argument("--refit-weights", choices=("last", "best"), default="last",
                    help="refit proxies: last = re-predict from the last checkpoint's EMA (what a refit member "
                         "keeps; default), best = their oof.npz (best epoch chosen on these images)")
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading of the table (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    shares = args.share or [0.25, 0.5, 0.75, 1.0]
    designs = []
    for text in args.design:
        label, _, runs = text.partition("=")
        runs, _, k = runs.partition("@")
        if not runs or (k and not k.isdigit()):
            raise SystemExit(f"error: --design {text!r}: write LABEL=RUN,RUN,... or LABEL=RUN,RUN,...@K")
        paths = [Path(r) for r in runs.split(",")]
        size = int(k) if k else len(paths)
        if not 1 <= size <= len(paths):
            raise SystemExit(f"error: --design {text!r}: @{size} needs 1..{len(paths)} of its {len(paths)} runs")
        designs.append((label.strip(), paths, size))
    loaded = {p: load_proxy(p) for p in {*args.refit, *(p for _, runs, _ in designs for p in runs)}}
    best_refit = {p: loaded[p][3]["oof"] for p in args.refit}
    if args.refit_weights == "last":
        for p in args.refit:
            ids_, probs, truth_, facts = loaded[p]
            probs = last_weights_probs(p)
            loaded[p] = (ids_, probs, truth_, {**facts, "oof": macro_f1(truth_, probs.argmax(axis=1), probs.shape[1])})
    ids, _, truth, _ = loaded[args.refit[0]]
    for p, (other, _, t, _) in loaded.items():
        if not (np.array_equal(other, ids) and np.array_equal(t, truth)):
            raise SystemExit(f"error: {p} was validated on other images than {args.refit[0]}; every proxy needs "
                             f"the same pinned split (split.params.seed)")
    n_classes = loaded[args.refit[0]][1].shape[1]

    def f1(probs: np.ndarray) -> float:
        return macro_f1(truth, probs.argmax(axis=1), n_classes)

    def mean(runs) -> np.ndarray:
        return np.mean([loaded[r][1] for r in runs], axis=0)

    lines = [f"Validation people of the proxy split: {len(ids)} images, every proxy's out-of-fold images.", "",
             "| proxy | recipe seed | train_fraction | training images | OOF macro F1 |", "|---|---:|---:|---:|---:|"]
    for p in dict.fromkeys([*args.refit, *(r for _, runs, _ in designs for r in runs)]):
        fa = loaded[p][3]
        lines.append(f"| {p} | {fa['seed']} | {fa['train_fraction']} | {fa['n_train']} | {fa['oof']:.4f} |")
    single = [loaded[r][3]["oof"] for r in args.refit]
    weights = ("their last epoch's EMA weights, as a refit member keeps (their best-epoch figure: mean "
               f"{np.mean(list(best_refit.values())):.4f})" if args.refit_weights == "last"
               else "their best epoch, chosen on these images")
    lines += ["", f"Refit proxies predict with {weights}.", "",
              f"Refit proxies alone: mean {np.mean(single):.4f} over {len(single)} seeds (SD "
                  f"{np.std(single, ddof=1) if len(single) > 1 else 0:.4f}); soft vote of all of them "
                  f"{f1(mean(args.refit)):.4f}.", "",
              "| design | fold proxies (choices) | their soft vote | " + " | ".join(
                  f"+{k} refit, share {s:g}" for k in (1, 2) for s in shares) + " |",
              "|---|---:|---:|" + "---:|" * (2 * len(shares))]
    for label, runs, size in designs:
        fold_votes = [mean(c) for c in itertools.combinations(runs, size)]
        cells = []
        for k in (1, 2):
            refits = [mean(c) for c in itertools.combinations(args.refit, k)]
            for s in shares:
                scores = [f1((1 - s) * folds + s * refit) for folds in fold_votes for refit in refits]
                cells.append(f"{np.mean(scores):.4f} (min {min(scores):.4f})")
        alone = [f1(v) for v in fold_votes]
        lines.append(f"| {label} | {size} ({len(fold_votes)}) | {np.mean(alone):.4f} (min {min(alone):.4f}) | "
                     + " | ".join(cells) + " |")
    lines += ["", "Each cell: the mean over every choice of the design's fold proxies (and, in the '+k refit' "
                  "columns, of k refit proxies, blended with the fold vote at that share); min: the worst choice.",
              ""]
    if args.reading:
        lines += [*args.reading.read_text().rstrip().splitlines(), ""]
    lines += [f"{time.perf_counter() - started:.0f} s for this table."]
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results("refit members on proxies: more people per member or more members — "
                                        "CPU, from scratch", lines, args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
