"""How much could pooling a person's photos add? An upper bound from a run's out-of-fold predictions.

    python benchmarks/person_pooling.py RUN_DIR --data_dir DATA [--no-append]

In the competition layout every person has several photos (seven in the mask data), and some factors (gender,
age) are the same on all of them. A test set's photos are anonymous, but one could try to group them by person
and pool the person-level factors over each group. Before anyone builds that, this measures its ceiling: on a
finished run's split members' out-of-fold predictions (every training image predicted once, by the member that
did not train on its person), the factors whose truth is constant within every person are pooled over the
person's photos with the true person ids (an oracle grouping no test set gives), as the mean log probability,
and the classes rebuilt as the product of factor marginals. The figure without pooling is the same product of
marginals, so the difference is the pooling alone; arg-max throughout (no decision rule).

Reads no eval answers. Appended to RESULTS.md unless ``--no-append``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decision_transfer import finish, run_oof  # noqa: E402

from ensemble_core.labelspace import MASK_STATUS  # noqa: E402
from ensemble_core.metrics import macro_f1  # noqa: E402


def factor_marginals(probs: np.ndarray, codes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{factor: (N, size)}``: each factor's probabilities, summed over the classes that share its code."""
    return {name: np.stack([probs[:, c == k].sum(axis=1) for k in range(int(c.max()) + 1)], axis=1)
            for name, c in codes.items()}


def rebuild(marginals: dict[str, np.ndarray], codes: dict[str, np.ndarray]) -> np.ndarray:
    """Class probabilities (up to a constant) as the product of the factor marginals."""
    out = np.ones((len(next(iter(marginals.values()))), len(next(iter(codes.values())))))
    for name, m in marginals.items():
        out *= m[:, codes[name]]
    return out


def pool_by_person(m: np.ndarray, persons: np.ndarray) -> np.ndarray:
    """Each row replaced by the normalised geometric mean of its person's rows."""
    _, inv = np.unique(persons, return_inverse=True)
    logs = np.log(np.clip(m, 1e-12, None))
    sums = np.zeros((inv.max() + 1, m.shape[1]))
    np.add.at(sums, inv, logs)
    pooled = np.exp(sums[inv] / np.bincount(inv)[inv][:, None])
    return pooled / pooled.sum(axis=1, keepdims=True)


def person_level_factors(truth_codes: dict[str, np.ndarray], persons: np.ndarray) -> list[str]:
    """The factors whose true code is the same on every photo of every person."""
    _, inv = np.unique(persons, return_inverse=True)
    out = []
    for name, c in truth_codes.items():
        lo = np.full(inv.max() + 1, np.iinfo(np.int64).max)
        hi = np.full(inv.max() + 1, np.iinfo(np.int64).min)
        np.minimum.at(lo, inv, c)
        np.maximum.at(hi, inv, c)
        if (lo == hi).all():
            out.append(name)
    return out


def pooling_table(ids: np.ndarray, probs: np.ndarray, truth: np.ndarray, persons: np.ndarray, space) -> list[str]:
    n = probs.shape[1]
    if n != space.n_classes:
        raise SystemExit(f"error: the run predicts {n} classes, label space {space.name!r} has {space.n_classes}")
    codes = space.decode(np.arange(n))
    truth_codes = space.decode(truth)
    pooled_factors = person_level_factors(truth_codes, persons)
    if not pooled_factors:
        raise SystemExit("error: no factor is constant within every person: nothing to pool")
    marg = factor_marginals(probs, codes)
    pooled = {k: (pool_by_person(v, persons) if k in pooled_factors else v) for k, v in marg.items()}
    rows = [("the vote (arg-max)", probs), ("product of factor marginals", rebuild(marg, codes)),
            (f"{', '.join(pooled_factors)} pooled over each person's photos (oracle ids)", rebuild(pooled, codes))]
    lines = [f"{len(ids)} out-of-fold images of {len(np.unique(persons))} people "
             f"({len(ids) / len(np.unique(persons)):.1f} photos each); person-level factors (truth constant within "
             f"every person): {', '.join(pooled_factors)}.", "",
             "| predictions | macro F1 | " + " | ".join(f"{f} accuracy" for f in space.factor_names) + " |",
             "|---|---:|" + "---:|" * len(space.factor_names)]
    for name, p in rows:
        pred = p.argmax(axis=1)
        f1 = macro_f1(truth, pred, n_classes=n)
        pc = space.decode(pred)
        accs = " | ".join(f"{(pc[f] == truth_codes[f]).mean():.4f}" for f in space.factor_names)
        lines.append(f"| {name} | {f1:.4f} | {accs} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished run with k-fold members (every image predicted once)")
    ap.add_argument("--data_dir", type=Path, required=True, help="the data the run trained on (its person ids)")
    ap.add_argument("--notes", default="")
    ap.add_argument("--reading", type=Path, help="markdown file: the author's reading of the table (appended as is)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    from ensemble_core.data.layout import load_dataset
    ds = load_dataset(args.data_dir)
    ids, probs, truth = run_oof(args.run)
    person_of = dict(zip(ds.train["image_id"].astype(str), ds.train["person"].astype(str)))
    missing = [i for i in ids if i not in person_of]
    if missing:
        raise SystemExit(f"error: {len(missing)} predicted image(s) are not in {args.data_dir}'s training table "
                         f"(first: {missing[0]}); pass the data the run trained on")
    persons = np.array([person_of[i] for i in ids])
    lines = pooling_table(ids, probs, truth, persons, ds.label_space or MASK_STATUS) + [""]
    return finish(lines, "pooling a person's photos: the oracle ceiling on out-of-fold predictions — CPU", args,
                  started)


if __name__ == "__main__":
    raise SystemExit(main())
