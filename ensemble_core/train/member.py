"""Train one ensemble member end to end: resume, epochs, best-epoch selection, predictions, ``DONE``.

A *refit* member (``Member.refit``, planned by the recipe's ``refit``; its split has no validation rows)
trains on every person for the full ``epochs``, keeps the last epoch's weights (the EMA's when ``ema_decay`` is set),
writes an empty ``oof.npz`` and predicts the eval images.

``train_member(member, dataset, (train_rows, val_rows), run_dir)`` writes into
``run_dir`` itself (the executor passes ``<out_dir>/members/<member.run_name>``);
see :mod:`ensemble_core.runfolder` for the files. A folder with ``DONE``
is skipped; a folder with ``checkpoints/last.pt`` resumes after that epoch.
"""
from __future__ import annotations

import hashlib
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ensemble_core.contracts import check_member
from ensemble_core.data.images import dataset_images, resolve_inputs
from ensemble_core.data.splits import split_data_hash
from ensemble_core.errors import TrainingError
from ensemble_core.recipe import Member
from ensemble_core.registry import WEIGHTS_RECORD_ATTR, normalize_ref
from ensemble_core.progress import echo, progress_bar
from ensemble_core.stopping import MemberStopped, epoch_finished, stop_requested
from ensemble_core.train import components as C
from ensemble_core.atomic import atomic_write_json, atomic_write_text, remove_stale_temp_files
from ensemble_core.train.checkpoint import load_checkpoint, save_checkpoint
from ensemble_core.train.finetune import FineTuning
from ensemble_core.train.inputs import MemberLoaders, select_samples
from ensemble_core.train.loop import NonFiniteGuard, infer, member_probs, train_one_epoch
from ensemble_core.train.predict import original_class_names, score, write_predictions
from ensemble_core.runfolder import RunFolder
from ensemble_core.train.runlog import MetricsLog, TensorBoardLog
from ensemble_core.train.seeding import epoch_order, rng_state, seed_everything, set_rng_state

CHECKPOINT_FORMAT = 1


@dataclass
class Progress:
    """What survives a restart besides weights: last finished epoch (0-based, -1 = none) and the best so far."""

    epoch: int = -1
    best_metric: float = -math.inf
    best_epoch: int = -1
    best_weights: str = "model"       # "model" or "ema": which weights best.pt holds
    bad_epochs: int = 0               # validations since the last improvement (val_every skips don't count)
    resumed_from: int | None = None   # epochs finished when this process started (None: fresh)
    resumed_from_step: int = 0        # step of epoch ``resumed_from`` this process started at (stopped mid-epoch)


def split_hash(split: tuple[Sequence[int], Sequence[int]]) -> str:
    h = hashlib.sha1()
    for rows in split:
        h.update(np.asarray(rows, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:12]


def weights_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


class MemberTrainer:
    """Holds the built components of one member; :meth:`run` does the work."""

    def __init__(self, member: Member, dataset: Any, split, run_dir: Path, registry, device=None,
                 quiet: bool = False, image_cache=None):
        self.member, self.registry, self.quiet = member, registry, quiet
        self.run = RunFolder(run_dir)
        self.split = split
        self.seed = int(member.seed)
        seed_everything(self.seed)
        self.task = C.build_task(member, registry, getattr(dataset, "label_space", None))
        if isinstance(member.val_every, bool) or not isinstance(member.val_every, int) or member.val_every < 1:
            raise TrainingError(f"{member.run_name}: val_every must be a positive integer (1 scores every epoch), "
                                f"got {member.val_every!r}")
        self.refit = bool(member.refit)   # trained on every person: no validation, last weights kept
        self.samples = select_samples(self.task, dataset, split, refit=self.refit)
        self.data_hash = split_data_hash(dataset.train, split)
        self.device = C.choose_device(device)
        self.precision = C.choose_precision(member, self.device)
        # the model first: its pretrained weights decide the input normalisation (model init draws from torch's
        # generator, building the loaders draws from none, so the order leaves every random stream as it was)
        self.model = C.build_model(member, self.task, registry).to(self.device)
        self.weights = getattr(self.model, WEIGHTS_RECORD_ATTR, None)   # the weight source's record, or None
        self.inputs = resolve_inputs(member.input_config, self.weights)
        if image_cache is None:   # the data layer's decoded images, shared by the members of this process
            image_cache = dataset_images(dataset, member.load_size)
        self.loaders = MemberLoaders(self.samples, member, registry, image_cache, self.seed,
                                     pin_memory=self.device.type == "cuda", inputs=self.inputs)
        self.device_augment = (None if self.loaders.device_augment is None
                               else self.loaders.device_augment.to(self.device))
        if self.precision.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward_model = torch.compile(self.model) if member.compile else self.model
        self.loss_fn = C.build_loss(member, self.task, registry).to(self.device)
        check_member(member, self.task, self.model, self.loss_fn, registry)  # logits and loss fit, before epoch 1
        self.optimizer = C.build_optimizer(member, self.model, registry)
        self.fine_tuning = FineTuning(self.model, member, self.loaders.steps_per_epoch)
        if not self.fine_tuning.active:
            self.fine_tuning = None
        self.schedule = C.build_scheduler(member, self.optimizer, self.loaders.steps_per_epoch, registry)
        if getattr(getattr(self.schedule, "scheduler", None), "wants_metric", False):
            name = normalize_ref(member.scheduler)["name"]
            if self.refit:
                raise TrainingError(f"{member.run_name}: a refit member has no validation score for a schedule "
                                    f"that steps on one ({name}); use cosine / step, or refit: 0")
            if member.val_every > 1:
                raise TrainingError(f"{member.run_name}: val_every {member.val_every} leaves epochs without the "
                                    f"validation score {name} steps on; use val_every: 1")
        self.scaler = torch.amp.GradScaler("cuda") if self.precision.use_scaler else None
        self.ema = None
        if member.ema_decay:
            from timm.utils import ModelEmaV3
            self.ema = ModelEmaV3(self.model, decay=float(member.ema_decay), device=self.device)
        self.batch_augmentation = C.build_batch_augmentation(member, self.task, registry)
        self.ttas = C.build_ttas(member, registry)
        self.class_names = original_class_names(self.task)
        self.metrics = MetricsLog(self.run.metrics)
        self.progress = Progress()

    # ---- config and resume ---------------------------------------------
    def config(self) -> dict:
        return {"member": self.member.to_dict(), "run_name": self.member.run_name,
                "config_hash": self.member.config_hash(), "split_hash": split_hash(self.split),
                "data_hash": self.data_hash,
                "task": repr(self.task), "num_outputs": self.task.num_outputs,
                "heads": [asdict(h) for h in self.task.heads], "classes": self.class_names,
                "n_train": len(self.samples.train), "n_val": len(self.samples.val),
                "n_eval": 0 if self.samples.eval is None else len(self.samples.eval),
                "steps_per_epoch": self.loaders.steps_per_epoch, "device": str(self.device),
                "precision": self.precision.name, "channels_last": self.precision.channels_last,
                "torch_threads": torch.get_num_threads(),
                "weights": self.weights, "inputs": self.inputs.to_dict(),
                "fine_tuning": {"layer_decay": self.member.layer_decay, "param_groups": len(self.optimizer.param_groups),
                                "head_only_steps": 0 if self.fine_tuning is None else self.fine_tuning.head_only_steps,
                                "bn_eval": bool(self.member.bn_eval)},
                "versions": _versions()}

    def check_config(self) -> None:
        """Refuse to resume a folder that was started for another member config, split or data (a folder from
        before ``data_hash`` was recorded is checked on config and split only)."""
        if not self.run.config.is_file():
            return
        import json
        old = json.loads(self.run.config.read_text())
        new = self.config()
        for key in ("config_hash", "split_hash", "data_hash"):
            if key == "data_hash" and key not in old:
                continue
            if old.get(key) != new[key]:
                raise TrainingError(f"{self.run.config}: this run folder was started with {key} {old.get(key)!r}, "
                                    f"but this member has {new[key]!r}; a run folder resumes only the same member, "
                                    f"split and data (its people, images and labels). Use another run folder, or "
                                    f"delete {self.run.path} to start over.")

    def state_dict(self, partial: dict | None = None) -> dict:
        """``partial``: ``{"epoch", "step", "lr", "loss_sum", "n_finite"}`` of an epoch stopped on request (resume
        continues there, with the epoch's starting learning rate and running training loss)."""
        return {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "partial": partial,
                "ema": None if self.ema is None else self.ema.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.schedule is None else self.schedule.scheduler.state_dict(),
                "scaler": None if self.scaler is None else self.scaler.state_dict(),
                "epoch": self.progress.epoch, "progress": asdict(self.progress), "rng": rng_state(),
                "config_hash": self.member.config_hash(), "nonfinite_total": self.guard.total}

    def resume(self) -> None:
        remove_stale_temp_files(self.run.checkpoints)
        if not self.run.last.is_file():
            self.metrics.truncate_after(-1)
            return
        ckpt = load_checkpoint(self.run.last)
        if ckpt.get("config_hash") != self.member.config_hash():
            raise TrainingError(f"{self.run.last} belongs to member config {ckpt.get('config_hash')!r}, not "
                                f"{self.member.config_hash()!r}; delete {self.run.path} to start this member over")
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.module.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.schedule is not None and ckpt.get("scheduler") is not None:
            self.schedule.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        partial = ckpt.get("partial") or {}
        self.resume_step = int(partial.get("step", 0)) if partial.get("epoch") == ckpt["epoch"] + 1 else 0
        self.resume_partial = dict(partial) if self.resume_step else {}
        self.progress = Progress(**{**ckpt["progress"], "resumed_from": ckpt["epoch"] + 1,
                                    "resumed_from_step": self.resume_step})
        self.guard.total = int(ckpt.get("nonfinite_total", 0))
        self.metrics.truncate_after(ckpt["epoch"])
        if not partial:  # a stop mid-epoch saved after best.pt was complete
            self._repair_best(ckpt)

    def _repair_best(self, ckpt: dict) -> None:
        """A kill between saving last.pt and best.pt leaves best.pt one improvement behind; last.pt then holds
        the best weights, so rewrite best.pt from it."""
        p = self.progress
        if p.best_epoch < 0:
            return
        best_epoch = load_checkpoint(self.run.best)["epoch"] if self.run.best.is_file() else None
        if best_epoch != p.best_epoch and p.best_epoch == ckpt["epoch"] and self.writes_best(p.best_epoch):
            weights = ckpt["ema"] if p.best_weights == "ema" and ckpt.get("ema") is not None else ckpt["model"]
            save_checkpoint(self.run.best, {"model": weights, "epoch": p.best_epoch, "metric": p.best_metric,
                                            "weights": p.best_weights})

    def writes_best(self, epoch: int) -> bool:
        """Whether an improvement at ``epoch`` is written to best.pt: always for a validated member; for a refit
        member (every epoch "improves": its latest weights are the ones kept) only after the last planned epoch, so
        it writes best.pt once instead of once per epoch."""
        return not self.refit or epoch == int(self.member.epochs) - 1

    # ---- epochs --------------------------------------------------------
    def stop_early(self) -> bool:
        patience = self.member.early_stopping_patience
        return bool(patience) and not self.refit and self.progress.bad_epochs >= int(patience)

    def validate(self) -> tuple[str, dict, float | None, dict[str, float]]:
        """Score the model (and its EMA); return the better candidate's name, score, val loss, and all F1s."""
        candidates = [("model", self.forward_model)] + ([("ema", self.ema.module)] if self.ema is not None else [])
        best = None
        f1s = {}
        for name, model in candidates:
            logits, val_loss = infer(model, self.loaders.val_loader(), self.precision, (None,), self.loss_fn)
            sc = score(self.task.probs(logits[0]), self.samples.val_truth, self.class_names)
            f1s[name] = sc["macro_f1"]
            if best is None or sc["macro_f1"] > best[1]["macro_f1"]:
                best = (name, sc, val_loss)
        return best[0], best[1], best[2], f1s

    def train_epoch(self, epoch: int, tb: TensorBoardLog, start_step: int = 0) -> dict:
        order = epoch_order(len(self.loaders.train_set), self.seed, epoch)[start_step * self.loaders.batch_size:]
        lr = float(self.optimizer.param_groups[0]["lr"])
        if start_step and "lr" in self.resume_partial:
            lr = float(self.resume_partial["lr"])   # the rate this epoch started with, before the stop
        bar = progress_bar(self.loaders.steps_per_epoch, f"{self.member.run_name} {epoch + 1}/{self.member.epochs}",
                            self.quiet)
        if bar is not None and start_step:
            bar.update(start_step)
        try:
            stats = train_one_epoch(self.forward_model, self.loaders.train_loader(order, epoch), self.loss_fn,
                                    self.optimizer, self.schedule, self.scaler, self.precision, self.guard, epoch,
                                    self.batch_augmentation, self.ema, self.member.grad_clip, bar,
                                    start_step=start_step, should_stop=stop_requested,
                                    device_augment=self.device_augment,
                                    carried=self.resume_partial if start_step else None,
                                    fine_tuning=self.fine_tuning)
        finally:
            if bar is not None:
                bar.close()
        if stats["stopped_at_step"] is not None:
            self.stop_mid_epoch(epoch, stats["stopped_at_step"], lr, stats)
        if not weights_finite(self.model):
            raise TrainingError(f"epoch {epoch + 1}: model weights became NaN/inf; stopped without saving them "
                                f"(last good checkpoint: {self.run.last}). Lower the learning rate or set grad_clip.")
        validated = not self.refit and self.member.validates_after(epoch)
        if validated:
            chosen, sc, val_loss, f1s = self.validate()
        else:   # a refit member (the latest weights are the ones kept) or an epoch val_every skips (none compared)
            chosen, val_loss, f1s = ("ema" if self.ema is not None else "model") if self.refit else None, None, {}
            sc = {"macro_f1": None, "macro_f1_all": None, "accuracy": None, "per_class_f1": {}, "confusion": None}
        if self.schedule is not None and self.schedule.interval == "epoch":
            if getattr(self.schedule.scheduler, "wants_metric", False):  # e.g. timm_plateau
                self.schedule.scheduler.step(sc["macro_f1"])
            else:
                self.schedule.scheduler.step()
        record = {"epoch": epoch, "train_loss": stats["train_loss"], "val_loss": val_loss, "lr": lr,
                  "macro_f1": sc["macro_f1"], "macro_f1_all": sc["macro_f1_all"], "accuracy": sc["accuracy"],
                  "per_class_f1": sc["per_class_f1"], "images_per_s": stats["images_per_s"],
                  "train_seconds": stats["train_seconds"], "nonfinite_steps": stats["nonfinite_steps"],
                  "weights": chosen}
        if self.ema is not None and f1s:
            record["model_macro_f1"], record["ema_macro_f1"] = f1s["model"], f1s["ema"]
        p = self.progress
        improved = self.refit or (val_loss is not None and math.isfinite(val_loss)
                                  and sc["macro_f1"] > p.best_metric + 1e-12)
        p.epoch = epoch
        if improved:
            metric = p.best_metric if self.refit else sc["macro_f1"]
            p.best_metric, p.best_epoch, p.best_weights, p.bad_epochs = metric, epoch, chosen, 0
        elif validated:   # early-stopping patience counts validations
            p.bad_epochs += 1
        # a refit member has no score: null, never -Infinity (which strict JSON readers refuse)
        record["best_macro_f1"] = None if self.refit or p.best_epoch < 0 else p.best_metric
        record["best_epoch"] = p.best_epoch
        self.metrics.append(record)
        epoch_finished()   # in-process listeners (a tuner's pruner) see the epoch before the next one starts
        tb.scalars({"loss/train": record["train_loss"], "loss/val": val_loss, "lr": lr,
                    "val/macro_f1": sc["macro_f1"], "val/accuracy": sc["accuracy"],
                    "speed/images_per_s": stats["images_per_s"], "per_class_f1": sc["per_class_f1"]}, epoch)
        save_checkpoint(self.run.last, self.state_dict())
        if improved and self.writes_best(epoch):
            weights = self.ema.module if chosen == "ema" else self.model
            save_checkpoint(self.run.best, {"model": weights.state_dict(), "epoch": epoch, "metric": p.best_metric,
                                            "weights": chosen})
            if sc["confusion"] is not None:
                tb.confusion(sc["confusion"], self.class_names, epoch)
        if not self.quiet:
            scored = (f"refit, no validation ({chosen} kept)" if self.refit else
                      f"val_loss {val_loss:.4f} macro_f1 {sc['macro_f1']:.4f} ({chosen})" if validated else
                      f"not validated (val_every {self.member.val_every})")
            echo(f"{self.member.run_name} epoch {epoch + 1}/{self.member.epochs}: train_loss "
                  f"{record['train_loss']:.4f} {scored} {stats['images_per_s']:.0f} img/s"
                  + (" *best" if improved and not self.refit else ""))
        return record

    def stop_mid_epoch(self, epoch: int, step: int, lr: float, stats: dict) -> None:
        """Save everything after ``step`` steps of ``epoch`` (resume continues with the next step), then stop."""
        if not weights_finite(self.model):
            raise TrainingError(f"epoch {epoch + 1}: model weights became NaN/inf before the requested stop; "
                                f"not saved (last good checkpoint: {self.run.last})")
        save_checkpoint(self.run.last, self.state_dict(partial={"epoch": epoch, "step": step, "lr": lr,
                                                                "loss_sum": stats["loss_sum"],
                                                                "n_finite": stats["n_finite"]}))
        raise MemberStopped(self.run.path, f"in epoch {epoch + 1} after step {step} ({self.run.last} saved)")

    # ---- predictions ---------------------------------------------------
    def load_best(self) -> None:
        self.model.load_state_dict(load_checkpoint(self.run.prediction_weights)["model"])

    def predict(self, loader) -> np.ndarray:
        return member_probs(self.model, loader, self.precision, self.task, [None, *self.ttas])

    def finish(self, started: float, tb: TensorBoardLog) -> dict:
        self.load_best()
        if self.refit:   # no out-of-fold images: an empty oof.npz of the right width
            oof_probs = np.zeros((0, len(self.class_names)), dtype=np.float32)
            final = {"macro_f1": None, "accuracy": None, "per_class_f1": None}
        else:
            oof_probs = self.predict(self.loaders.val_loader())
            final = score(oof_probs, self.samples.val_truth, self.class_names)
        write_predictions(self.run.oof, self.samples.val["image_id"], oof_probs, self.samples.val_truth)
        eval_loader = self.loaders.eval_loader()
        if eval_loader is not None:
            write_predictions(self.run.eval, self.samples.eval["image_id"], self.predict(eval_loader))
        if not self.refit:
            tb.confusion(final["confusion"], self.class_names, max(self.progress.best_epoch, 0), tag="oof/confusion")
        p = self.progress
        summary = {"status": "trained", "run_name": self.member.run_name, "task": self.task.name,
                   "backbone": self.member.backbone["name"], "split_index": self.member.split_index,
                   "seed": self.seed, "epochs_run": p.epoch + 1, "epochs_planned": int(self.member.epochs),
                   "stopped_early": p.epoch + 1 < int(self.member.epochs),
                   "best_epoch": p.best_epoch, "best_weights": p.best_weights,
                   "best_val_macro_f1": p.best_metric if p.best_epoch >= 0 and not self.refit else None,
                   "refit": self.refit,
                   "oof_macro_f1": final["macro_f1"], "oof_accuracy": final["accuracy"],
                   "oof_per_class_f1": final["per_class_f1"], "tta": [repr(t) for t in self.ttas],
                   "resumed_from_epoch": p.resumed_from, "resumed_from_step": p.resumed_from_step,
                   "nonfinite_steps": self.guard.total,
                   "n_train": len(self.samples.train), "n_val": len(self.samples.val),
                   "n_eval": 0 if self.samples.eval is None else len(self.samples.eval),
                   "device": str(self.device), "precision": self.precision.name,
                   "seconds_this_process": time.perf_counter() - started}
        atomic_write_json(self.run.summary, summary)
        return summary

    def run_all(self) -> dict:
        started = time.perf_counter()
        self.run.create()
        self.guard = NonFiniteGuard(int(self.member.max_nonfinite_steps))
        self.resume_step = 0
        self.resume_partial: dict = {}
        self.check_config()
        atomic_write_json(self.run.config, self.config())
        self.resume()
        tb = TensorBoardLog(self.run.tb)
        try:
            if (self.progress.resumed_from or self.resume_step) and not self.quiet:
                at = f", step {self.resume_step} of epoch {self.progress.resumed_from + 1}" if self.resume_step else ""
                echo(f"{self.member.run_name}: resuming after epoch {self.progress.resumed_from}{at} ({self.run.last})")
            first = self.progress.epoch + 1
            for epoch in range(first, int(self.member.epochs)):
                if self.stop_early():
                    break
                if epoch > first and stop_requested():  # last.pt holds the epoch before
                    raise MemberStopped(self.run.path, f"after epoch {epoch} ({self.run.last} saved)")
                self.train_epoch(epoch, tb, self.resume_step if epoch == first else 0)
            if self.progress.epoch < 0:
                raise TrainingError(f"{self.run.path}: no epoch was trained (epochs={self.member.epochs})")
            summary = self.finish(started, tb)
        finally:
            tb.close()
        atomic_write_text(self.run.done, f"{self.member.run_name}\n")
        return summary


def train_member(member: Member | dict, dataset: Any, split: tuple[Sequence[int], Sequence[int]],
                 run_dir: str | Path, *, registry, device: str | torch.device | None = None,
                 quiet: bool = False, image_cache=None) -> dict:
    """Train one member into ``run_dir`` (the member's own folder) and return its summary.

    ``dataset``: the data layer's ``Dataset`` (``train`` / ``eval`` tables); ``split``: row
    indices into ``dataset.train``; ``registry``: the components to build from (the caller's plugin
    catalog); ``image_cache``: an ``ImageCache`` to reuse when it holds every needed path at the member's
    ``load_size`` (default: the data layer's images of ``dataset``, shared within the process). The member's ``threads`` field sets torch's CPU threads for
    this process: it changes the arithmetic (the order of float sums), so it is part of the member's config
    and every executor gives the same bytes. Skips a folder with ``DONE``
    (returns its summary with status ``"skipped"``); resumes from ``checkpoints/last.pt``.
    """
    if isinstance(member, dict):
        member = Member.from_dict(member)
    run = RunFolder(run_dir)
    if run.is_done():
        return {**run.read_summary(), "status": "skipped"}
    before = torch.get_num_threads()
    torch.set_num_threads(int(member.threads))
    try:
        trainer = MemberTrainer(member, dataset, split, Path(run_dir), registry=registry, device=device, quiet=quiet,
                                image_cache=image_cache)
        return trainer.run_all()
    finally:
        torch.set_num_threads(before)   # the caller's process (a notebook, tune, the local executor) keeps its own


def _versions() -> dict[str, str]:
    import timm

    from ensemble_core import __version__
    return {"ensemble_core": __version__, "torch": torch.__version__, "timm": timm.__version__,
            "python": platform.python_version()}
