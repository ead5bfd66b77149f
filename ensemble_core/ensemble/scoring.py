"""Score a submission: ``python -m ensemble_core score SUBMISSION ANSWERS [--out DIR]``.

Both files have the columns ``ImageID,ans`` (``ans`` a class 0..17). Reports
macro F1 over the 18 classes (the competition metric), accuracy, per-task
accuracy (mask, gender, age), per-class F1, and writes a confusion matrix PNG.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ensemble_core.errors import DataError
from ensemble_core.labels import N_CLASSES, class_names, decode_class
from ensemble_core.metrics import plot_confusion

COLUMNS = ("ImageID", "ans")


def _read_csv(path: str | Path, what: str, columns: Sequence[str], expected: str) -> pd.DataFrame:
    """A CSV read as strings, with ``columns`` present (``expected`` says where that format comes from)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{what} {path}: cannot read CSV: {exc}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what} {path}: missing column(s) {', '.join(map(repr, missing))}; found "
                        f"{', '.join(map(repr, df.columns))}. Expected the columns {','.join(columns)} ({expected})")
    return df


def read_answers(path: str | Path, what: str) -> pd.DataFrame:
    """A ``ImageID,ans`` CSV with ``ans`` checked to be integers 0..17."""
    df = _read_csv(path, what, COLUMNS, "as eval/info.csv")
    values = pd.to_numeric(df["ans"].str.strip(), errors="coerce")
    bad = values.isna() | (values < 0) | (values >= N_CLASSES) | (values != values.round())
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        examples = ", ".join(f"line {i + 2}: {df['ImageID'].iat[i]!r} -> {df['ans'].iat[i]!r}" for i in rows[:5])
        raise DataError(f"{what} {path}: {len(rows)} value(s) of 'ans' outside the classes 0..{N_CLASSES - 1} "
                        f"({examples})")
    dup = df["ImageID"][df["ImageID"].duplicated()]
    if len(dup):
        raise DataError(f"{what} {path}: ImageID {dup.iat[0]!r} appears more than once; list each image once")
    return pd.DataFrame({"ImageID": df["ImageID"], "ans": values.astype(np.int64)})


def align(sub: pd.DataFrame, ans: pd.DataFrame, sub_path, ans_path) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) classes in the order of the answers; ids must match exactly."""
    sub_ids, ans_ids = set(sub["ImageID"]), set(ans["ImageID"])
    missing, extra = sorted(ans_ids - sub_ids), sorted(sub_ids - ans_ids)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} ImageID(s) of {ans_path} have no prediction (e.g. {missing[:3]})")
        if extra:
            parts.append(f"{len(extra)} ImageID(s) in the submission are not in the answers (e.g. {extra[:3]})")
        raise DataError(f"submission {sub_path} does not match answers {ans_path}: " + "; ".join(parts)
                        + ". Predict exactly the images of eval/info.csv")
    pred = sub.set_index("ImageID").loc[ans["ImageID"], "ans"].to_numpy()
    return pred, ans["ans"].to_numpy()


def metrics(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Macro F1, accuracy, per-task accuracy, per-class F1 and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score

    labels = list(range(N_CLASSES))
    per_class = f1_score(truth, pred, average=None, labels=labels, zero_division=0)
    pm, pg, pa = decode_class(pred)
    tm, tg, ta = decode_class(truth)
    return {
        "n": int(len(truth)),
        "macro_f1": float(f1_score(truth, pred, average="macro", labels=labels, zero_division=0)),
        "accuracy": float(np.mean(pred == truth)),
        "task_accuracy": {"mask": float(np.mean(pm == tm)), "gender": float(np.mean(pg == tg)),
                          "age": float(np.mean(pa == ta))},
        "per_class_f1": {name: float(v) for name, v in zip(class_names(), per_class)},
        "confusion": confusion_matrix(truth, pred, labels=labels).tolist(),
    }


def score(submission_csv: str | Path, answers_csv: str | Path, out_dir: str | Path | None = None) -> dict:
    """Score ``submission_csv`` against ``answers_csv``; writes ``confusion_matrix.png`` to ``out_dir``
    (default: the submission's folder). Returns the metrics dict (with ``confusion_png``)."""
    sub = read_answers(submission_csv, "submission")
    ans = read_answers(answers_csv, "answers")
    pred, truth = align(sub, ans, submission_csv, answers_csv)
    result = metrics(pred, truth)
    out_dir = Path(out_dir) if out_dir is not None else Path(submission_csv).resolve().parent
    png = plot_confusion(result["confusion"], out_dir / "confusion_matrix.png",
                         f"{Path(submission_csv).name}: macro F1 {result['macro_f1']:.4f}, "
                         f"accuracy {result['accuracy']:.4f}")
    result["confusion_png"] = str(png)
    return result


# ---------------------------------------------------------------- any data layout
def _read_rows(path: str | Path, what: str, columns: Sequence[str]) -> pd.DataFrame:
    df = _read_csv(path, what, columns, "the data set's submission format")
    dup = df[columns[0]][df[columns[0]].duplicated()]
    if len(dup):
        raise DataError(f"{what} {path}: {columns[0]} {dup.iat[0]!r} appears more than once; list each image once")
    return df[list(columns)].apply(lambda c: c.str.strip())


def _classes(df: pd.DataFrame, space, columns: Sequence[str], value: str, what: str, path) -> np.ndarray:
    """Final class ids of a submission-format table (``columns``: id, then ``label`` and / or factors)."""
    names = space.class_names()
    final = [c for c in columns[1:] if c not in space.factor_names]
    if final:                   # a column of final classes (label, ans, ...)
        col = df[final[0]]
        lookup = {n: i for i, n in enumerate(names)} if value == "name" else {str(i): i for i in range(len(names))}
        ids = col.map(lookup)
    else:
        codes = {}
        for f in space.factors:
            col = df[f.name]
            lookup = ({c: i for i, c in enumerate(f.classes)} if value == "name"
                      else {str(i): i for i in range(f.size)})
            codes[f.name] = col.map(lookup)
            bad = codes[f.name].isna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{what} {path}: line {i + 2}: {f.name} {col.iat[i]!r} is not one of "
                                f"{', '.join(f.classes)}")
        ids = pd.Series(space.encode(**{k: v.astype(np.int64).to_numpy() for k, v in codes.items()}))
    bad = ids.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{what} {path}: line {i + 2}: class {col.iat[i]!r} is not one of "
                        f"{', '.join(names[:20])}")
    return ids.astype(np.int64).to_numpy()


def score_layout(submission_csv: str | Path, answers_csv: str | Path, layout, label_space=None,
                 out_dir: str | Path | None = None) -> dict:
    """Score a submission in a data layout's format (its ``submission_columns``, class names or ids) against
    answers in the same format. ``label_space``: the data set's (default: the layout's; a layout whose classes
    come from the data gets one factor per column, its classes the values found in both files)."""
    from ensemble_core.labelspace import label_space_from_params
    from sklearn.metrics import confusion_matrix, f1_score

    columns = tuple(layout.submission_columns)
    value = layout.submission_value
    sub = _read_rows(submission_csv, "submission", columns)
    ans = _read_rows(answers_csv, "answers", columns)
    space = label_space or getattr(layout, "label_space", None)
    if space is None:
        space = label_space_from_params("answers", [(c, sorted(set(sub[c]) | set(ans[c]))) for c in columns[1:]])
    sub_ids, ans_ids = set(sub[columns[0]]), set(ans[columns[0]])
    if sub_ids != ans_ids:
        missing, extra = sorted(ans_ids - sub_ids), sorted(sub_ids - ans_ids)
        raise DataError(f"submission {submission_csv} does not match answers {answers_csv}: {len(missing)} image(s) "
                        f"without a prediction (e.g. {missing[:3]}), {len(extra)} not in the answers (e.g. "
                        f"{extra[:3]})")
    sub = sub.set_index(columns[0]).loc[ans[columns[0]]].reset_index()
    pred = _classes(sub, space, columns, value, "submission", submission_csv)
    truth = _classes(ans, space, columns, value, "answers", answers_csv)
    labels = list(range(space.n_classes))
    per_class = f1_score(truth, pred, average=None, labels=labels, zero_division=0)
    pc, tc = space.decode(pred), space.decode(truth)
    result = {
        "n": int(len(truth)),
        "macro_f1": float(f1_score(truth, pred, average="macro", labels=labels, zero_division=0)),
        "accuracy": float(np.mean(pred == truth)),
        "task_accuracy": {f: float(np.mean(pc[f] == tc[f])) for f in space.factor_names},
        "per_class_f1": {name: float(v) for name, v in zip(space.class_names(), per_class)},
        "confusion": confusion_matrix(truth, pred, labels=labels).tolist(),
    }
    out_dir = Path(out_dir) if out_dir is not None else Path(submission_csv).resolve().parent
    png = plot_confusion(result["confusion"], out_dir / "confusion_matrix.png",
                         f"{Path(submission_csv).name}: macro F1 {result['macro_f1']:.4f}, "
                         f"accuracy {result['accuracy']:.4f}", class_names=space.class_names())
    result["confusion_png"] = str(png)
    return result


def format_result(result: dict) -> str:
    t = result["task_accuracy"]
    lines = [f"images:    {result['n']}",
             f"macro F1:  {result['macro_f1']:.4f}",
             f"accuracy:  {result['accuracy']:.4f}",
             "per task:  " + "  ".join(f"{k} {v:.4f}" for k, v in t.items()),
             "per-class F1:"]
    for i, (name, v) in enumerate(result["per_class_f1"].items()):
        lines.append(f"  {i:2d} {name:<22} {v:.4f}")
    if result.get("confusion_png"):
        lines.append(f"confusion matrix: {result['confusion_png']}")
    return "\n".join(lines)


def cli_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ensemble-core score", description="Score a submission (ImageID,ans).")
    parser.add_argument("submission")
    parser.add_argument("answers")
    parser.add_argument("--out", default=None, help="folder for confusion_matrix.png (default: the submission's)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--dataset", default=None,
                        help="data layout whose submission format both files have (default mask_competition: "
                             "ImageID,ans); image_folder: image,label with class names; csv: its submission_columns")
    parser.add_argument("--dataset-params", default=None, metavar="JSON", help="the layout's parameters (JSON)")
    parser.add_argument("--data-dir", default=None,
                        help="the data set (its label space gives the class order; default: the classes found)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.dataset is None and args.dataset_params is None:
        result = score(args.submission, args.answers, args.out)
    else:
        from ensemble_core.data.formats import layout_from_flags
        layout = layout_from_flags(args.dataset, args.dataset_params)
        space = layout.load(args.data_dir).label_space if args.data_dir else None
        result = score_layout(args.submission, args.answers, layout, space, args.out)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    try:
        raise SystemExit(cli_main())
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1)
