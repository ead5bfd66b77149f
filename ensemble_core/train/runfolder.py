"""The files of one member's run folder (the folder *is* ``<out_dir>/members/<member.run_name>``)::

    config.json          member spec, split sizes and hash, device, precision, versions
    metrics.jsonl        one line per epoch
    tb/                  TensorBoard events (scalars, validation confusion matrix)
    checkpoints/last.pt  everything needed to resume (model, optimizer, scheduler, scaler, EMA, RNG states)
    checkpoints/best.pt  weights of the best validation epoch
    oof.npz              validation images: image_id, probs (N, C_orig), truth (N,)
    eval.npz             eval images: image_id, probs
    summary.json         best epoch, scores, timings
    DONE                 written last; a member with DONE is skipped
"""
from __future__ import annotations

import json
from pathlib import Path

from ensemble_core.executors import DONE_FILE


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def oof(self) -> Path:
        return self.path / "oof.npz"

    @property
    def eval(self) -> Path:
        return self.path / "eval.npz"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def done(self) -> Path:
        return self.path / DONE_FILE

    def is_done(self) -> bool:
        return self.done.is_file()

    def read_summary(self) -> dict:
        return json.loads(self.summary.read_text()) if self.summary.is_file() else {}

    def create(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
