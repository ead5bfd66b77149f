"""Helpers for the pipeline tests: an executor that writes the true labels as predictions (no training)."""
from __future__ import annotations

import dataclasses
import importlib.util
import pickle
import types
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble_core.data.layout import AGE_CLASS_YEARS, load_dataset
from ensemble_core.executors import MemberResult
from ensemble_core.runfolder import DONE_FILE
from ensemble_core.labels import decode_class
from ensemble_core.manager import get_registry
from ensemble_core.presets import SMALL
from ensemble_core.recipe import MemberSpec


REPO = Path(__file__).resolve().parents[1]
TINY = dataclasses.replace(SMALL, name="tiny", load_size=(32, 24), crop=(24, 22), epochs=1, batch_size=16,
                           backbones={"mask": "test_resnet", "factor": "test_resnet", "second": "test_efficientnet",
                                      "third": "test_convnext"})


def load_recipe_module(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def labels_frame(label18: np.ndarray, ids) -> pd.DataFrame:
    m, g, a = decode_class(np.asarray(label18))
    return pd.DataFrame({"image_id": list(ids), "mask": m, "gender": g,
                         "age": np.asarray(AGE_CLASS_YEARS)[a]})


class TruthExecutor:
    """Writes each member's cached predictions as the true labels (one-hot), without training.

    ``wrong_split`` makes the members of that split predict class 0 everywhere, so voting matters.
    """

    def __init__(self, answers_csv: Path, wrong_split: int | None = None):
        ans = pd.read_csv(answers_csv)
        self.eval_frame = labels_frame(ans["ans"].to_numpy(), ans["ImageID"])
        self.wrong_split = wrong_split
        self.calls = 0

    def run(self, jobs):
        results = []
        for job in jobs:
            pickle.loads(pickle.dumps(job))  # jobs must travel to other processes
            if job.is_done():
                results.append(MemberResult(job.run_name, job.run_dir, "skipped"))
                continue
            self.calls += 1
            member = MemberSpec.from_dict(job.member)
            task = get_registry().build("task", member.task["name"], **member.task["params"])
            dataset = load_dataset(job.data_dir, exclude=job.exclude)
            train = dataset.train
            usable = set(dataset.eval["image_id"].astype(str)) if dataset.eval is not None else set()
            eval_frame = self.eval_frame[self.eval_frame["image_id"].astype(str).isin(usable)]
            val = train.iloc[job.val_rows]
            val = val[task.rows(val)]
            run_dir = Path(job.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            n = task.num_original_classes

            def onehot(truth):
                if self.wrong_split == member.split_index:
                    truth = np.zeros_like(truth)
                return np.eye(n, dtype=np.float32)[truth] * 0.9 + 0.1 / n

            np.savez(run_dir / "oof.npz", image_id=val["image_id"].to_numpy().astype(str),
                     probs=onehot(task.truth(val)), truth=task.truth(val))
            np.savez(run_dir / "eval.npz", image_id=eval_frame["image_id"].to_numpy().astype(str),
                     probs=onehot(task.truth(eval_frame)))
            (run_dir / DONE_FILE).write_text("truth\n")
            results.append(MemberResult(job.run_name, job.run_dir, "trained"))
        return results


def plugin_module(name: str, hooks: dict) -> types.ModuleType:
    """A throwaway plugin module named ``name`` holding the ``ensemble_*`` hook implementations of ``hooks``
    (pass ``locals()`` of the function that defined them)."""
    module = types.ModuleType(name)
    for attr, value in hooks.items():
        if attr.startswith("ensemble_"):
            setattr(module, attr, value)
    return module
