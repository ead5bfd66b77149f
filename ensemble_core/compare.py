"""Set finished runs side by side: ``python -m ensemble_core compare RUN_DIR... [--answers CSV] [--out DIR]``.

One row per run folder (the ``out_dir`` of a recipe run: ``recipe.json`` + ``metrics.json``): recipe
and preset, members (trained / reused by the last run command), backbones, voter, decision, the
run's own out-of-fold macro F1 (the honest figure its report gives), accuracy, per-factor accuracy,
eval macro F1 when ``--answers`` is given, wall time and device. Rows are sorted by OOF macro F1,
best first. The table is printed as Markdown; with ``--out`` it is also written as ``compare.csv``
(with every per-class F1) and ``compare.md``, and ``per_class_f1.png`` plots the out-of-fold F1 of
each of the 18 classes for every run side by side. Globs are expanded (``'runs/*'``); a folder that
is not a finished run folder is named and skipped.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ensemble_core.errors import DataError, EnsembleCoreError
from ensemble_core.runfolder import (METRICS_FILE, RECIPE_FILE, RUN_FILE, SUBMISSION_FILE, SUMMARY_FILE,
                                     members_dir)

COLUMNS = ("run", "recipe", "preset", "members", "backbones", "voter", "decision", "oof_macro_f1",
           "oof_accuracy", "mask_acc", "gender_acc", "age_acc", "eval_macro_f1", "wall_time", "device")
CSV_FILE, MD_FILE, PNG_FILE = "compare.csv", "compare.md", "per_class_f1.png"


class CompareError(EnsembleCoreError):
    """Nothing to compare, or an answers file that cannot be used."""


@dataclass
class RunRow:
    path: Path
    values: dict[str, Any]
    per_class_f1: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def expand(patterns: Sequence[str]) -> list[Path]:
    """Folders named or matched by glob patterns, in order, each once."""
    seen: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            seen.setdefault(Path(pattern), None)  # reported as missing
        for m in matches:
            seen.setdefault(Path(m), None)
    return list(seen)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path.name} is unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def not_a_run(path: Path) -> str | None:
    """Why ``path`` cannot be compared, or None."""
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a folder"
    if not (path / RECIPE_FILE).is_file():
        return "is not a run folder (no recipe.json)"
    if not (path / METRICS_FILE).is_file():
        return "has no metrics.json (the run has not finished; rerun its command)"
    return None


def decision_crossfit(metrics: Mapping[str, Any]) -> float | None:
    value = (metrics.get("decision") or {}).get("crossfit_macro_f1")
    return None if value is None else float(value)


def _ref_text(ref: Any) -> str:
    if ref is None:
        return "argmax"
    if isinstance(ref, str) or (isinstance(ref, Mapping) and "name" in ref):
        from ensemble_core.ensemble.report import component_text
        return component_text(ref)
    return str(ref)


def _member_summaries(path: Path) -> list[dict]:
    out = []
    for summary in sorted(members_dir(path).glob(f"*/{SUMMARY_FILE}")):
        try:
            out.append(_read_json(summary))
        except ValueError:
            continue
    return out


def _wall_time(run_info: Mapping[str, Any], summaries: list[dict]) -> tuple[float | None, str]:
    if isinstance(run_info.get("wall_seconds"), (int, float)):
        return float(run_info["wall_seconds"]), "run commands"
    secs = [s.get("seconds_this_process") for s in summaries if isinstance(s.get("seconds_this_process"), (int, float))]
    return (float(sum(secs)), "members' training, summed") if secs else (None, "")


def eval_score(path: Path, answers: Path | None) -> tuple[float | None, str | None]:
    if answers is None:
        return None, None
    from ensemble_core.ensemble import scoring

    sub_path = path / SUBMISSION_FILE
    if not sub_path.is_file():
        return None, f"{path}: no submission.csv, so no eval macro F1"
    try:
        sub = scoring.read_answers(sub_path, "submission")
        ans = scoring.read_answers(answers, "answers")
        pred, truth = scoring.align(sub, ans, sub_path, answers)
    except DataError as exc:
        return None, f"{path}: no eval macro F1: {exc}"
    return scoring.metrics(pred, truth)["macro_f1"], None


def read_run(path: Path, answers: Path | None = None) -> RunRow:
    """One row; raises ValueError when the folder's files cannot be read."""
    metrics = _read_json(path / METRICS_FILE)
    recipe = _read_json(path / RECIPE_FILE)
    info = _read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    oof = metrics.get("oof") or {}
    factor = oof.get("factor_accuracy") or {}
    statuses = list((info.get("members") or {}).values())
    member_rows = metrics.get("members") or []
    n_members = len(member_rows) or len(statuses)
    trained, reused = statuses.count("trained"), statuses.count("skipped")
    n_refit = sum(1 for m in member_rows if m.get("refit"))
    backbones = sorted({m.get("backbone") for m in member_rows if m.get("backbone")})
    summaries = _member_summaries(path)
    devices = sorted({str(s["device"]) for s in summaries if s.get("device")})
    seconds, how = _wall_time(info, summaries)
    decision = metrics.get("decision", recipe.get("decision"))
    oof_f1 = oof.get("macro_f1")
    if isinstance(decision, Mapping) and "requested" in decision:   # the decision record a run writes
        fitted = decision["requested"]
        if decision.get("kept_argmax"):
            decision = f"{_ref_text(fitted)} -> kept argmax" if _ref_text(fitted) != "argmax" else "argmax"
        else:
            decision = fitted
            if decision.get("name") != "argmax" and decision_crossfit(metrics) is not None:
                oof_f1 = decision_crossfit(metrics)   # the honest figure of an applied rule is cross-fitted
    eval_f1, note = eval_score(path, answers)
    values = {
        "run": path.name or str(path),
        "recipe": metrics.get("recipe") or recipe.get("name"),
        "preset": info.get("preset") or "n/a",
        "members": (f"{n_members} ({trained} trained / {reused} reused)" if statuses else str(n_members))
        + (f", {n_refit} refit" if n_refit else ""),
        "members_total": n_members, "members_trained": trained, "members_reused": reused,
        "backbones": ", ".join(backbones),
        "voter": _ref_text(metrics.get("voter") or recipe.get("voter")),
        "decision": _ref_text(decision),
        "oof_macro_f1": oof_f1,
        "oof_accuracy": oof.get("accuracy"),
        "oof_images": oof.get("n_images"),
        "mask_acc": factor.get("mask"), "gender_acc": factor.get("gender"), "age_acc": factor.get("age"),
        "eval_macro_f1": eval_f1,
        "wall_seconds": seconds, "wall_time": _fmt_seconds(seconds), "wall_time_from": how,
        "device": ", ".join(devices) or "n/a",
        "path": str(path),
    }
    notes = [note] if note else []
    if n_refit:
        notes.append(f"{path.name or path}: {n_refit} refit member(s) trained on every person vote on eval only; its "
                     f"out-of-fold figures describe the split members (fewer people each), so they understate "
                     f"the eval vote against runs without refit members")
    return RunRow(path, values, dict(oof.get("per_class_f1") or {}), notes)


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def markdown(rows: Sequence[RunRow]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r.values[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def run_class_names(rows: Sequence[RunRow]) -> list[str]:
    """The classes of the runs' label space: the mask competition's 18, or the classes the runs' metrics name
    (runs of another data set), in their order."""
    from ensemble_core.labels import class_names

    mask = class_names()
    seen: list[str] = []
    for r in rows:
        seen += [n for n in r.per_class_f1 if n not in seen]
    return mask if not seen or set(seen) <= set(mask) else seen


def write_csv(rows: Sequence[RunRow], path: Path) -> Path:
    import pandas as pd

    from ensemble_core.atomic import atomic_write

    names = run_class_names(rows)
    records = []
    for r in rows:
        rec = {k: v for k, v in r.values.items() if k != "wall_time"}
        rec.update({f"f1_{i:02d}_{n}": r.per_class_f1.get(n) for i, n in enumerate(names)})
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def plot_per_class(rows: Sequence[RunRow], path: Path) -> Path:
    """Grouped bars: the 18 classes on x, one bar per run (out-of-fold F1)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    from ensemble_core.atomic import atomic_write

    names = run_class_names(rows)
    n = max(1, len(rows))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(10, 0.6 * len(names) * max(1, n / 2)), 5))
    x = np.arange(len(names))
    for k, r in enumerate(rows):
        vals = [r.per_class_f1.get(c) for c in names]
        vals = [np.nan if v is None else v for v in vals]
        f1 = r.values["oof_macro_f1"]
        label = f"{r.values['run']} (OOF macro F1 {f1:.4f})" if isinstance(f1, float) else r.values["run"]
        ax.bar(x - 0.4 + width * (k + 0.5), vals, width, label=label)
    ax.set_xticks(x, labels=[f"{i} {c}" for i, c in enumerate(names)], rotation=75, fontsize=7, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("out-of-fold F1")
    ax.set_title("per-class F1 of each run (out of fold)")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def compare(run_dirs: Sequence[str | Path], answers: str | Path | None = None, out: str | Path | None = None,
            warn=print) -> dict[str, Any]:
    """Compare run folders; returns ``{"rows", "skipped", "markdown", "files"}``."""
    answers_path = Path(answers) if answers is not None else None
    if answers_path is not None:
        from ensemble_core.ensemble.scoring import read_answers
        read_answers(answers_path, "answers")  # a bad answers file is the user's to fix, before anything
    rows, skipped = [], []
    for path in expand([str(p) for p in run_dirs]):
        why = not_a_run(path)
        if why is None:
            try:
                rows.append(read_run(path, answers_path))
            except ValueError as exc:
                why = f"cannot be read: {exc}"
        if why is not None:
            skipped.append((str(path), why))
            warn(f"skipping {path}: {why}")
    for r in rows:
        for note in r.notes:
            warn(f"note: {note}")
    if not rows:
        raise CompareError(f"no run folder to compare among {', '.join(map(str, run_dirs))}; pass the out_dir of "
                           f"finished recipe runs (folders holding recipe.json and metrics.json)")
    rows.sort(key=lambda r: (r.values["oof_macro_f1"] is None, -(r.values["oof_macro_f1"] or 0.0)))
    table = markdown(rows)
    files: dict[str, Path] = {}
    if out is not None:
        from ensemble_core.atomic import atomic_write_text
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        files["csv"] = write_csv(rows, out_dir / CSV_FILE)
        files["markdown"] = atomic_write_text(out_dir / MD_FILE, table + "\n")
        files["png"] = plot_per_class(rows, out_dir / PNG_FILE)
    return {"rows": rows, "skipped": skipped, "markdown": table, "files": files}


def cli_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ensemble-core compare",
        description="Compare finished run folders side by side: one row per run, sorted by out-of-fold macro F1.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders or globs ('runs/*')")
    parser.add_argument("--answers", default=None, help="eval answers CSV (ImageID,ans): adds eval macro F1")
    parser.add_argument("--out", default=None, help="folder for compare.csv, compare.md and per_class_f1.png")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    result = compare(args.run_dirs, answers=args.answers, out=args.out,
                     warn=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(result["markdown"])
    if any(r.values["eval_macro_f1"] is not None for r in result["rows"]):
        print("\neval macro F1 is measured on the answers given; choose a submission on the out-of-fold figure.")
    for key, path in result["files"].items():
        print(f"{key}: {path}")
    return 0
