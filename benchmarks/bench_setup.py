"""What the benchmark scripts share: loading a recipe file, shrinking a recipe to the tiny CPU size,
the demo data for ``--tiny``, and the honest labels every table carries (weights, data, hardware kind)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/tmp/maskproxy")
TINY_BACKBONES = ("test_efficientnet", "test_resnet", "test_convnext")
TINY_IMAGE = [32, 24]


def load_recipe_module(path: str | Path):
    """Import a recipe file (``recipes/best.py``); it must define ``NAME``, ``recipe`` and ``build``."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    if not path.is_file():
        raise SystemExit(f"error: recipe file {str(path)!r} not found; pass e.g. --recipe recipes/best.py")
    spec = importlib.util.spec_from_file_location(f"recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attr in ("NAME", "recipe"):
        if not hasattr(module, attr):
            raise SystemExit(f"error: {path} has no {attr!r}; a recipe file defines NAME, build, recipe and run")
    return module


def tiny_recipe(data: dict[str, Any], epochs: int = 1) -> dict[str, Any]:
    """The same recipe structure (tasks, splits, voter, label transforms, batch augmentation) with tiny
    backbones from scratch on 32x24 images, one epoch, no workers: seconds on a CPU."""
    data = dict(data)
    defaults = dict(data.get("defaults") or {})
    defaults.update({"image_size": list(TINY_IMAGE), "load_size": None, "preprocess": [], "epochs": epochs,
                     "batch_size": 16, "num_workers": 0, "eval_batch_size": None})
    data["defaults"] = defaults
    tasks = []
    for k, entry in enumerate(data.get("tasks", [])):
        entry = dict(entry)
        for key in ("image_size", "load_size", "preprocess", "epochs", "batch_size", "num_workers", "val_every",
                    "head_only_epochs", "layer_decay"):
            entry.pop(key, None)
        if "backbones" in entry:
            entry["backbones"] = [{"name": TINY_BACKBONES[i % len(TINY_BACKBONES)], "params": {}}
                                  for i in range(len(entry["backbones"]))]
        if "backbone" in entry or "backbones" not in entry:   # entries of one task keep distinct backbones
            entry["backbone"] = {"name": TINY_BACKBONES[k % len(TINY_BACKBONES)], "params": {}}
        tasks.append(entry)
    data["tasks"] = tasks
    return data


def demo_data(out_dir: str | Path) -> Path:
    """The synthetic demo faces (competition layout with eval/answers.csv) for ``--tiny`` runs."""
    from ensemble_core.data.demo import make_demo
    return make_demo(Path(out_dir), n_people=40, n_eval_people=12, image_size=(64, 48), seed=0)


def given_data(path: str | Path) -> Path:
    """A data folder passed on the command line, used as it is: a script never rebuilds or rewrites a
    folder it was given (tests and other runs may share it). Missing or not in the competition layout:
    exit with the fix."""
    path = Path(path).expanduser()
    if not (path / "train" / "train.csv").is_file():
        raise SystemExit(f"error: --data {str(path)!r} holds no train/train.csv; pass a folder in the competition "
                         f"layout (make one with `python -m ensemble_core.data.demo {path}`), or leave --data out "
                         f"to use fresh demo data")
    return path


def weights_label(backbones: list[dict[str, Any]]) -> str:
    """'from scratch' unless some backbone loads pretrained weights (download or local file)."""
    from ensemble_core.registry import uses_weights
    pretrained = sorted({b["name"] for b in backbones if uses_weights(b.get("params") or {})})
    if not pretrained:
        return "from scratch (no pretrained weights)"
    return f"pretrained weights for {', '.join(pretrained)}"


def data_label(data_dir: str | Path, tiny: bool) -> str:
    data_dir = Path(data_dir)
    if tiny:
        return f"synthetic demo faces ({data_dir}), not the competition data"
    if "maskproxy" in str(data_dir):
        return f"maskproxy ({data_dir}): UTKFace renders standing in for the competition photos"
    return str(data_dir)


def device_kind() -> str:
    import torch
    return f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"


def results_module():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import results_log
    return results_log


BASELINE_NOTE = ("the seed's 0.7372 macro F1 was measured on the original competition data with "
                 "ImageNet-pretrained backbones; maskproxy reference 0.542 (H200, efficientnet_b0 from scratch, "
                 "3 splits x 24 epochs, soft vote); not like-for-like with runs of another size or data")
