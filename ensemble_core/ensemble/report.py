"""Ensemble figures: ``metrics.json``, ``report.md`` and the confusion-matrix PNG.

Out-of-fold figures are measured on the training images that every task
predicted out of fold (each member only predicts its own validation people),
so they are honest estimates on *our* data. The seed's 0.7372 was measured on
the original competition's private test set with ImageNet-pretrained
backbones; the report says so next to every comparison.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ensemble_core.ensemble.assemble import Ensemble, TaskVote, is_refit
from ensemble_core.metrics import accuracy, confusion, f1_per_class, macro_f1, macro_f1_from_confusion
from ensemble_core.atomic import atomic_write_json, atomic_write_text
from ensemble_core.registry import normalize_ref
from ensemble_core.runfolder import CONFUSION_FILE, METRICS_FILE, REPORT_FILE
from ensemble_core.labelspace import MASK_STATUS
from ensemble_core.registry import uses_weights
from ensemble_core.metrics import plot_confusion

SEED_REFERENCE = {
    "macro_f1": 0.7372,
    "accuracy": 0.7937,
    "measured_on": "original competition data (private eval), ImageNet-pretrained resnext50d_32x4d + "
                   "tf_efficientnet_b3_ns at 512x384 (docs/ENSEMBLE.md, The seed)",
}


# ---------------------------------------------------------------- numbers
def member_rows(tv: TaskVote) -> list[dict[str, Any]]:
    """Validation figures of each member of a task, on its out-of-fold images the task is about."""
    rows_by_id = dict(zip(tv.train_ids, tv.rows))
    out = []
    for p in [*tv.members, *tv.refit]:
        row = {"run_name": p.run_name, "task": tv.name, "backbone": p.member.backbone["name"],
               "split": p.member.split_index, "n_val_images": 0, "refit": is_refit(p),
               "val_macro_f1": None, "val_accuracy": None}     # a refit member: nothing out of fold
        if not row["refit"]:
            keep = np.array([rows_by_id.get(i, False) for i in p.oof_ids], dtype=bool)
            truth, pred = p.oof_truth[keep], p.oof_probs[keep].argmax(axis=1)
            row.update(n_val_images=int(keep.sum()), val_macro_f1=macro_f1(truth, pred, tv.task.num_original_classes),
                       val_accuracy=accuracy(truth, pred))
        out.append(row)
    return out


def component_text(ref: Any) -> str:
    """A component reference as a recipe names it: ``median`` or ``weighted_soft {"weights": [2, 1]}`` (never the
    built object's ``repr``, which for a plugin's class is ``<module.Class object at 0x...>``)."""
    ref = normalize_ref(ref)
    return f"{ref['name']} {json.dumps(ref['params'], sort_keys=True, default=str)}" if ref["params"] else ref["name"]


def task_summary(tv: TaskVote, voter_ref: Any) -> dict[str, Any]:
    have = ~np.isnan(tv.oof).any(axis=1) & tv.rows
    truth, pred = tv.truth[have], tv.oof[have].argmax(axis=1)
    weights = getattr(tv.voter, "weights", None)
    return {
        "members": [p.run_name for p in tv.members],
        "refit_members": [p.run_name for p in tv.refit],
        "voter": component_text(voter_ref),
        "groups": list(tv.groups),
        "weights": None if weights is None else [float(w) for w in weights],
        "n_oof_images": int(have.sum()),
        "oof_macro_f1": macro_f1(truth, pred, tv.task.num_original_classes),
        "oof_accuracy": accuracy(truth, pred),
        "filled_uniform": tv.filled_uniform,
        "learned": tv.voter.describe() if callable(getattr(tv.voter, "describe", None)) else None,
    }


def ensemble_metrics(ens: Ensemble) -> dict[str, Any]:
    space = ens.label_space if ens.label_space is not None else MASK_STATUS
    n_classes, names = space.n_classes, space.class_names()
    rows = ens.oof_rows
    truth, pred = ens.truth18[rows], ens.oof18[rows].argmax(axis=1)
    cm = confusion(truth, pred, n_classes)
    t_codes, p_codes = space.decode(truth), space.decode(pred)
    per_class = f1_per_class(cm)
    oof = {
        "n_images": int(rows.sum()),
        "n_train_images": int(len(rows)),
        "macro_f1": macro_f1_from_confusion(cm) if rows.any() else None,
        "accuracy": accuracy(truth, pred) if rows.any() else None,
        "factor_accuracy": {f: accuracy(t_codes[f], p_codes[f]) for f in space.factor_names},
        "per_class_f1": {names[c]: float(per_class[c]) for c in range(n_classes)},
        "confusion": cm.tolist(),
    }
    metrics: dict[str, Any] = {
        "voter": ens.voter_ref,
        "oof": oof,
        "tasks": {name: task_summary(tv, ens.voter_ref) for name, tv in ens.tasks.items()},
        "members": [row for tv in ens.tasks.values() for row in member_rows(tv)],
        "notes": list(ens.notes),
        "seed_reference": SEED_REFERENCE,
    }
    if space.name != MASK_STATUS.name:   # the seed's figures are about the mask competition only
        del metrics["seed_reference"]
        metrics["label_space"] = space.describe()
    if ens.eval18 is not None:
        counts = np.bincount(ens.eval_pred, minlength=n_classes)
        metrics["eval"] = {"n_images": int(len(ens.eval_ids)),
                           "predicted_class_counts": {names[c]: int(counts[c]) for c in range(n_classes)}}
    return metrics


# ---------------------------------------------------------------- markdown
def _fmt(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def weights_origin(members: list[Mapping[str, Any]]) -> str:
    pretrained = sorted({m["backbone"]["name"] for m in members if uses_weights(m["backbone"]["params"])})
    if not pretrained:
        return "trained from scratch (no pretrained weights)"
    return f"pretrained weights for {', '.join(pretrained)}"


def voter_cell(task: Mapping[str, Any]) -> str:
    """The task's voter as the recipe names it, with the weights it used per member group when it has any."""
    weights, groups = task.get("weights"), task.get("groups") or []
    if not weights or len(weights) != len(groups):
        return str(task["voter"])
    per_group = dict(zip(groups, weights))
    return f"{task['voter']} (weights {', '.join(f'{g} {w:.3g}' for g, w in per_group.items())})"


def render_report(metrics: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """``context``: recipe name, preset, data_dir, members (MemberSpec dicts), run figures, file names."""
    oof = metrics["oof"]
    lines = [f"# Ensemble report — recipe `{context.get('recipe')}`", ""]
    lines += [f"- data: `{context.get('data_dir')}`" + (f" ({context['data_note']})" if context.get("data_note") else ""),
              f"- preset: `{context.get('preset') or 'n/a'}`; weights: {weights_origin(context.get('members', []))}",
              f"- voter: `{component_text(metrics['voter'])}`",
              f"- decision: `{metrics['decision']['applied']}`" + (
                  f" (requested `{metrics['decision']['requested']['name']}`)"
                  if metrics['decision']['applied'] != metrics['decision']['requested']['name'] else "")
              if metrics.get("decision") else "- decision: `argmax`",
              f"- members: {len(metrics['members'])} ({context.get('member_status', 'from cache')})"]
    if context.get("submission"):
        lines.append(f"- submission: `{context['submission']}` ({metrics.get('eval', {}).get('n_images', 0)} eval images)")
    lines += ["", "## Ensemble, out of fold", "",
              f"Measured on {oof['n_images']} of {oof['n_train_images']} training images: those that every task "
              f"predicted out of fold (each member predicts only its own validation people).", "",
              "| figure | value |", "|---|---|",
              f"| macro F1 ({len(oof['per_class_f1'])} classes) | {_fmt(oof['macro_f1'])} |",
              f"| accuracy | {_fmt(oof['accuracy'])} |"]
    lines += [f"| {k} accuracy | {_fmt(v)} |" for k, v in oof["factor_accuracy"].items()]
    lines += ["", "## Tasks (voted members, out of fold, on the images each task is about)", "",
              "| task | members | voter | OOF macro F1 | OOF accuracy | images |", "|---|---|---|---|---|---|"]
    for name, t in metrics["tasks"].items():
        refit = len(t.get("refit_members") or [])
        count = f"{len(t['members'])} + {refit} refit" if refit else len(t["members"])
        lines.append(f"| {name} | {count} | {voter_cell(t)} | {_fmt(t['oof_macro_f1'])} | "
                     f"{_fmt(t['oof_accuracy'])} | {t['n_oof_images']} |")
    lines += ["", "## Members (each on its own validation split)", "",
              "| member | task | backbone | split | val macro F1 | val accuracy | val images |",
              "|---|---|---|---|---|---|---|"]
    for m in metrics["members"]:
        split = f"{m['split']} (refit: every person)" if m.get("refit") else m["split"]
        lines.append(f"| `{m['run_name']}` | {m['task']} | {m['backbone']} | {split} | "
                     f"{_fmt(m['val_macro_f1'])} | {_fmt(m['val_accuracy'])} | {m['n_val_images']} |")
    ref = metrics.get("seed_reference")
    if ref is None:
        space = metrics.get("label_space") or {}
        lines += ["", "## Label space", "", f"`{space.get('name')}`: "
                  + " x ".join(f"{f} ({', '.join(c)})" for f, c in (space.get("factors") or {}).items())
                  + f" = {space.get('n_classes')} classes"]
    else:
        lines += _seed_lines(ref, oof, context)
    if context.get("confusion_png"):
        lines += ["", "## Confusion matrix (out of fold)", "", f"![confusion matrix]({context['confusion_png']})"]
    per_class = oof["per_class_f1"]
    lines += ["", "## Per-class F1 (out of fold, arg-max)", "", "| class | F1 |", "|---|---|"]
    lines += [f"| {i} {name} | {_fmt(v)} |" for i, (name, v) in enumerate(per_class.items())]
    if metrics.get("decision"):
        from ensemble_core.ensemble.decision import render_decision
        lines += [""] + render_decision(metrics["decision"])
    learned = {name: t["learned"] for name, t in metrics["tasks"].items() if t.get("learned")}
    if learned:
        lines += ["", "## What the voter learned (cross-fitted by person)", ""]
        for name, info in learned.items():
            shown = {k: v for k, v in info.items() if k not in ("coef", "intercept")}
            lines.append(f"- {name}: `{shown}`")
    if metrics.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in metrics["notes"]]
    return "\n".join(lines) + "\n"


def _seed_lines(ref: Mapping[str, Any], oof: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """The report's "Against the seed" section (mask competition runs only)."""
    return ["", "## Against the seed", "",
            "| | macro F1 | accuracy | measured on |", "|---|---|---|---|",
            f"| seed (reported) | {ref['macro_f1']:.4f} | {ref['accuracy']:.4f} | {ref['measured_on']} |",
            f"| this ensemble (out of fold) | {_fmt(oof['macro_f1'])} | {_fmt(oof['accuracy'])} | "
            f"{oof['n_images']} training images of `{context.get('data_dir')}`, "
            f"{weights_origin(context.get('members', []))}, preset `{context.get('preset') or 'n/a'}` |", "",
            "The two rows are on different data (and usually different weights, image sizes and epochs), so "
            "the difference is not a measure of this code against the seed; only a run of the `seed` preset "
            "on the competition data with pretrained weights would be comparable."]


def write_outputs(out_dir: str | Path, metrics: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Path]:
    """``metrics.json``, ``confusion.png`` and ``report.md`` in ``out_dir``."""

    out_dir = Path(out_dir)
    paths = {"metrics": out_dir / METRICS_FILE, "report": out_dir / REPORT_FILE,
             "confusion": out_dir / CONFUSION_FILE}
    atomic_write_json(paths["metrics"], metrics)
    if metrics["oof"]["n_images"]:
        plot_confusion(np.array(metrics["oof"]["confusion"]), paths["confusion"],
                       f"{context.get('recipe')}: out-of-fold confusion, macro F1 {_fmt(metrics['oof']['macro_f1'])}",
                       class_names=list(metrics["oof"]["per_class_f1"]))
        context = {**context, "confusion_png": paths["confusion"].name}
    atomic_write_text(paths["report"], render_report(metrics, context))
    return paths
