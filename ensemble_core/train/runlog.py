"""Per-epoch records of a member: ``metrics.jsonl`` (one JSON object per epoch) and TensorBoard under ``tb/``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ensemble_core.atomic import atomic_write_text
from ensemble_core.metrics import confusion_figure


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, epochs after the restored checkpoint are dropped."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        return out

    def truncate_after(self, epoch: int) -> list[dict[str, Any]]:
        """Keep records of epochs <= ``epoch`` (0-based); rewrite the file atomically."""
        kept = [r for r in self.records() if r.get("epoch", -1) <= epoch]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()


class TensorBoardLog:
    """Scalars per epoch and a confusion-matrix image; a no-op when tensorboard is missing."""

    def __init__(self, folder: Path, enabled: bool = True):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but a slim install still trains
                return
            self.writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, record: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                self.writer.add_scalar(key.replace(".", "/"), value, step)
        for key in ("per_class_f1",):
            for name, value in (record.get(key) or {}).items():
                self.writer.add_scalar(f"{key}/{name}", value, step)

    def confusion(self, cm: np.ndarray, class_names: Sequence[str], step: int, tag: str = "val/confusion") -> None:
        if self.writer is None:
            return
        import matplotlib.pyplot as plt
        fig = confusion_figure(cm, class_names, f"{tag} (epoch {step})")
        self.writer.add_figure(tag, fig, step)
        plt.close(fig)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
