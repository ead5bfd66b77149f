"""Decision rules fitted on fold members, applied to a vote with refit members: do they carry over?

    python benchmarks/decision_transfer.py --fold F1 --fold F2 ... --refit R1 --refit R2 ... \\
        [--k 3] [--r 2] [--share 0.75] [--rule prior_power --rule factor_offsets] [--trials 24]

A run with ``refit`` members fits its decision rule on the split members' out-of-fold predictions, but its
eval vote blends refit members in at ``refit_share``. This measures, on held-out proxies (the one-member runs
of ``benchmarks/refit_proxies.py``, every one validated on the same people), whether a rule fitted that way
helps the vote it is applied to. Each trial draws ``k`` fold proxies and ``r`` refit proxies, deals the
validation people into two random halves A and B, fits each rule with the pipeline's own
:func:`ensemble_core.ensemble.decision.decide` on the fold vote's predictions of A (cross-fitted by person,
person-bootstrap support, confidence matching) and scores it on B, against arg-max on the same images, for

- the fold vote (the predictor the rule's estimate describes),
- the blend ``(1 - share) * fold vote + share * refit vote`` (a refit run's eval vote), and
- the refit vote alone;

means over trials, and over the trials where the pipeline would apply the rule (support >= 90%). Refit
proxies predict with their last checkpoint's EMA weights, as a refit member keeps (``--refit-weights best``:
their ``oof.npz``).

    python benchmarks/decision_transfer.py --run RUN_DIR [--trials 40] [--rule ...]

does the same at a real run's size on its split members' out-of-fold predictions (every training image,
predicted once by the member that did not train on it): per rule, the gain on half B, when the gate passed
on A and when it did not, and the correlation of A's cross-fitted estimate with B's gain.

Read the "when applied" figures with care: A and B are complementary halves of one fixed set of people, so
whatever a rule fits to A's sampling noise is, on B, the opposite noise; a rule that looks best on A tends
to look worse on B by construction (on a real run the two correlate at about -0.8). The all-trials means
are the out-of-sample estimate; the gate's calibration on truly new people cannot be read from halves.
Nothing here reads eval answers. Appended to RESULTS.md unless ``--no-append``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import results_module  # noqa: E402
from refit_proxies import last_weights_probs, load_proxy  # noqa: E402

from ensemble_core.ensemble.decision import decide  # noqa: E402
from ensemble_core.manager import get_registry  # noqa: E402
from ensemble_core.metrics import macro_f1  # noqa: E402

VOTES = ("fold vote", "blend", "refit vote")


def person_of(image_ids: np.ndarray) -> np.ndarray:
    """The person of each image id (``person/file``: in the competition layout one folder per person, the same
    grouping as the data set's ``person`` column)."""
    return np.array([i.split("/", 1)[0] for i in image_ids.astype(str)])


def trials(fold: dict, refit: dict, truth: np.ndarray, persons: np.ndarray, rules: list[str], k: int, r: int,
           share: float, n_trials: int, seed: int = 0) -> dict:
    """Per rule: per vote the list of (rule - arg-max) macro F1 on half B, and whether it would be applied."""
    registry = get_registry()
    rng = np.random.default_rng(seed)
    people = np.unique(persons)
    n_classes = next(iter(fold.values())).shape[1]
    out = {rule: {**{v: [] for v in VOTES}, "applied": []} for rule in rules}
    for t in range(n_trials):
        fold_vote = np.mean([fold[p] for p in rng.choice(sorted(fold), k, replace=False)], axis=0)
        refit_vote = np.mean([refit[p] for p in rng.choice(sorted(refit), r, replace=False)], axis=0)
        votes = dict(zip(VOTES, (fold_vote, (1 - share) * fold_vote + share * refit_vote, refit_vote)))
        half = np.isin(persons, rng.choice(people, len(people) // 2, replace=False))
        b = ~half
        for rule in rules:
            for name, vote in votes.items():
                o = decide(rule, fold_vote[half], truth[half], persons[half], vote[b], registry=registry, seed=t)
                gain = (macro_f1(truth[b], o.eval_pred_rule, n_classes)
                        - macro_f1(truth[b], o.eval_pred_argmax, n_classes))
                out[rule][name].append(gain)
            out[rule]["applied"].append(not o.kept_argmax)      # the pipeline's gate, as decide applies it
    return out


def run_oof(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, probabilities, truth) of a finished run's split members' out-of-fold predictions (refit
    members have none), every image once."""
    from ensemble_core.runfolder import OOF_FILE, members_dir
    parts = []
    for d in sorted(members_dir(run).iterdir()):
        if (d / OOF_FILE).is_file():
            with np.load(d / OOF_FILE, allow_pickle=False) as z:
                if len(z["image_id"]):
                    parts.append((z["image_id"].astype(str), z["probs"].astype(np.float64), z["truth"]))
    if not parts:
        raise SystemExit(f"error: {run} has no member with out-of-fold predictions")
    ids = np.concatenate([p[0] for p in parts])
    if len(np.unique(ids)) != len(ids):
        raise SystemExit(f"error: {run}: an image is predicted out of fold by more than one member (a shuffle "
                         f"split?); this needs k-fold members that predict every image once")
    return ids, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def gate_at_run_size(run: Path, rules: list[str], n_trials: int, seed: int = 0) -> list[str]:
    """Random person halves of a run's OOF: each rule fitted and gated on A (decide), its gain scored on B."""
    ids, probs, truth = run_oof(run)
    persons = person_of(ids)
    people = np.unique(persons)
    n_classes = probs.shape[1]
    registry = get_registry()
    rng = np.random.default_rng(seed)
    res = {rule: {"gain": [], "passed": [], "estimate": []} for rule in rules}
    for t in range(n_trials):
        a = np.isin(persons, rng.choice(people, len(people) // 2, replace=False))
        b = ~a
        for rule in rules:
            o = decide(rule, probs[a], truth[a], persons[a], probs[b], registry=registry, seed=t)
            res[rule]["gain"].append(macro_f1(truth[b], o.eval_pred_rule, n_classes)
                                     - macro_f1(truth[b], o.eval_pred_argmax, n_classes))
            res[rule]["passed"].append(not o.kept_argmax)
            res[rule]["estimate"].append(o.crossfit_oof_f1 - o.argmax_oof_f1)
    lines = [f"{run}: out-of-fold predictions of its split members, {len(ids)} images of {len(people)} people "
             f"(arg-max macro F1 {macro_f1(truth, probs.argmax(axis=1), n_classes):.4f}), dealt into random halves "
             f"{n_trials} times; each rule fitted and gated on half A (about {len(ids) // 2} images), scored on half "
             f"B against arg-max.", "",
             "| rule | trials | gate passed on A | gain on B, all trials (SD) | when passed | when not | "
             "corr(A's cross-fitted estimate, B's gain) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for rule in rules:
        g, ok, est = (np.asarray(res[rule][k]) for k in ("gain", "passed", "estimate"))

        def mean(mask):
            return "-" if not mask.any() else f"{g[mask].mean():+.4f}"
        corr = np.corrcoef(est, g)[0, 1] if g.std() > 0 and est.std() > 0 else float("nan")
        lines.append(f"| {rule} | {len(g)} | {int(ok.sum())} | {g.mean():+.4f} ({g.std():.4f}) | {mean(ok)} | "
                     f"{mean(~ok)} | {corr:.2f} |")
    return lines


def finish(lines: list[str], title: str, args, started: float) -> int:
    """The author's reading and the time under the table; print it, and append it unless ``--no-append``."""
    if args.reading:
        lines += [*args.reading.read_text().rstrip().splitlines(), ""]
    lines.append(f"{time.perf_counter() - started:.0f} s for this table.")
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results(title, lines, args.notes)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fold", type=Path, action="append", default=[],
                    help="a proxy trained on a fold's share of the people (repeat)")
    ap.add_argument("--refit", type=Path, action="append", default=[],
                    help="a proxy trained on every training person of the proxy split (repeat)")
    ap.add_argument("--run", type=Path, help="instead of proxies: a finished k-fold run (the gate at its size)")
    ap.add_argument("--k", type=int, default=3, help="fold proxies per vote (default 3)")
    ap.add_argument("--r", type=int, default=2, help="refit proxies per vote (default 2)")
    ap.add_argument("--share", type=float, default=0.75, help="the refit share of the blend (default 0.75)")
    ap.add_argument("--rule", action="append", default=None, help="decision rules (default prior_power, "
                                                                    "factor_offsets)")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--refit-weights", choices=("last", "best"), default="last")
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading of the table (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    rules = args.rule or ["prior_power", "factor_offsets"]
    started = time.perf_counter()
    if args.run is not None:
        return finish(gate_at_run_size(args.run, rules, args.trials) + [""],
                      "decision gate at a run's size: rules fitted on half the people, scored on the other half "
                      "— CPU", args, started)
    if not (1 <= args.k <= len(args.fold) and 1 <= args.r <= len(args.refit) and 0 < args.share <= 1):
        raise SystemExit(f"error: need 1 <= --k <= {len(args.fold)} fold proxies, 1 <= --r <= {len(args.refit)} "
                         f"refit proxies and 0 < --share <= 1 (or --run RUN_DIR)")
    loaded = {p: load_proxy(p) for p in [*args.fold, *args.refit]}
    ids, _, truth, _ = loaded[args.fold[0]]
    for p, (other, _, t, _) in loaded.items():
        if not (np.array_equal(other, ids) and np.array_equal(t, truth)):
            raise SystemExit(f"error: {p} was validated on other images than {args.fold[0]}; every proxy needs "
                             f"the same pinned split (split.params.seed)")
    fold = {str(p): loaded[p][1] for p in args.fold}
    refit = {str(p): (last_weights_probs(p) if args.refit_weights == "last" else loaded[p][1]) for p in args.refit}
    persons = person_of(ids)
    res = trials(fold, refit, truth, persons, rules, args.k, args.r, args.share, args.trials)
    lines = [f"Validation people of the proxy split: {len(ids)} images of {len(np.unique(persons))} people, dealt "
             f"into random halves {args.trials} times; each trial votes {args.k} of {len(args.fold)} fold proxies "
             f"and {args.r} of {len(args.refit)} refit proxies "
             f"({'last-epoch EMA weights' if args.refit_weights == 'last' else 'their oof.npz'}); blend = "
             f"{1 - args.share:g} fold vote + {args.share:g} refit vote. Each cell: macro F1 of the rule minus "
             f"arg-max's on half B, the rule fitted on the fold vote's predictions of half A.", "",
             "| rule | trials | would be applied (support >= 90%) | fold vote | blend | refit vote | when applied: "
             "fold vote | blend | refit vote |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rule in rules:
        o = res[rule]
        applied = np.array(o["applied"])

        def cell(values, mask=None):
            v = np.asarray(values) if mask is None else np.asarray(values)[mask]
            return "-" if not len(v) else f"{v.mean():+.4f} (min {v.min():+.4f})"
        lines.append(f"| {rule} | {len(applied)} | {int(applied.sum())} | "
                     + " | ".join(cell(o[v]) for v in VOTES) + " | "
                     + " | ".join(cell(o[v], applied) for v in VOTES) + " |")
    return finish(lines + [""], "decisions fitted on fold members, applied to a refit blend — CPU proxies", args,
                  started)


if __name__ == "__main__":
    raise SystemExit(main())
