"""A finished member on any images: its architecture with its own trained weights, its eval transform, image size,
precision and TTA views, the same code the trainer predicted ``eval.npz`` with. What ``python -m ensemble_core
predict`` runs for every member, in this process or in an executor's worker (:func:`predict_member_into`).

Weights come from the member's ``checkpoints/best.pt`` (``torch.load(weights_only=True)``) or from an exported
ensemble's ``weights.safetensors``; pretrained weights are never fetched (:func:`components.model_for_prediction`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ensemble_core.atomic import atomic_write_json, atomic_write_text
from ensemble_core.errors import TrainingError
from ensemble_core.labelspace import space_from_record
from ensemble_core.recipe import Member
from ensemble_core.runfolder import DONE_FILE, EVAL_FILE, SUMMARY_FILE
from ensemble_core.train import components as C
from ensemble_core.train.checkpoint import load_checkpoint
from ensemble_core.train.inputs import eval_batch_size, image_cache_for, loader_generator, member_eval_transform
from ensemble_core.train.loop import member_probs
from ensemble_core.train.predict import write_predictions

SAFETENSORS_SUFFIX = ".safetensors"


def read_member_weights(path: str | Path, run_name: str = "member") -> dict[str, torch.Tensor]:
    """A member's trained state dict: ``best.pt`` / ``last.pt`` (its ``model``, loaded with weights_only=True) or a
    ``.safetensors`` file. A missing, damaged or foreign file raises :class:`TrainingError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"member {run_name}: its weights {path} are missing; train it again (delete its DONE "
                            f"and rerun the recipe) or export the run again")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
            raise TrainingError(f"member {run_name}: {path} is not a readable safetensors file "
                                f"({type(exc).__name__}: {exc}); export the run again") from None
    try:
        return load_checkpoint(path)["model"]
    except TrainingError as exc:
        raise TrainingError(f"member {run_name}: {exc}") from None


def load_member_model(member: Member, state: Mapping[str, torch.Tensor], registry, label_space=None):
    """(task, model in eval mode on the CPU) of a finished member with its trained ``state`` dict; weights that do
    not fit the member's architecture raise :class:`TrainingError` naming the member."""
    task = C.build_task(member, registry, label_space)
    model = C.model_for_prediction(member, task, registry)
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:2]
        raise TrainingError(f"member {member.run_name}: its weights do not fit its backbone "
                            f"{member.backbone['name']!r} with {task.num_outputs} outputs ({' '.join(first)}); the "
                            f"checkpoint belongs to another member or is damaged: train it again") from None
    return task, model.eval()


def predict_member(member: Member, state: Mapping[str, torch.Tensor], paths: Sequence[str], registry, *,
                   label_space=None, device: str | torch.device | None = None, image_cache=None,
                   inputs: Mapping[str, Any] | None = None, threads: int | None = None) -> np.ndarray:
    """Probabilities ``(len(paths), C_orig)`` float32 of ``member`` with weights ``state`` on the images at
    ``paths``: decoded at the member's ``load_size`` (``image_cache`` reused when it holds them), its eval
    transform (``inputs``: its config.json's record), batches of its ``eval_batch_size``, its precision, the
    identity view plus its TTA views. torch's CPU threads are the member's ``threads`` (as when it trained: the
    same bytes) unless ``threads`` is given."""
    from torch.utils.data import DataLoader

    from ensemble_core.data.images import ImageDataset

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads or member.threads))
    try:
        task, model = load_member_model(member, state, registry, label_space)
        device = C.choose_device(device)
        precision = C.choose_precision(member, device)
        model = model.to(device)
        if precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        cache = image_cache_for(paths, member.load_size, image_cache)
        dataset = ImageDataset(cache, cache.rows_of(paths), None, member_eval_transform(member, registry, inputs))
        loader = DataLoader(dataset, batch_size=eval_batch_size(member), shuffle=False,
                            num_workers=int(member.num_workers), pin_memory=device.type == "cuda",
                            generator=loader_generator(int(member.seed)))
        return member_probs(model, loader, precision, task, [None, *C.build_ttas(member, registry)])
    finally:
        torch.set_num_threads(before)


def predict_member_into(work_dir: str | Path, member: Mapping[str, Any] | Member, weights: str | Path,
                        image_ids: Sequence[str], paths: Sequence[str], label_space: Mapping[str, Any] | None,
                        registry, inputs: Mapping[str, Any] | None = None, device: str | None = None,
                        threads: int | None = None, quiet: bool = True) -> dict:
    """One prediction job (an executor's worker calls it): predict ``member`` on ``paths`` and write ``eval.npz``
    (``image_id``, ``probs``), ``summary.json`` (seconds, images/s, views, device) and ``DONE`` into
    ``work_dir`` (a scratch folder of the prediction's output, never the run folder). The decoded images are the
    data layer's, shared by every member of this process with the same load size."""
    from ensemble_core.data.images import shared_images

    member = Member.from_dict(member)
    work = Path(work_dir)
    start = time.perf_counter()
    state = read_member_weights(weights, member.run_name)
    cache = shared_images(paths, member.load_size)
    space = None if label_space is None else space_from_record(label_space)
    probs = predict_member(member, state, list(paths), registry, label_space=space, device=device,
                           image_cache=cache, inputs=inputs, threads=threads)
    seconds = time.perf_counter() - start
    views = 1 + len(C.build_ttas(member, registry))
    summary = {"run_name": member.run_name, "n_images": len(paths), "views": views, "seconds": seconds,
               "images_per_s": len(paths) / max(seconds, 1e-9), "device": str(C.choose_device(device)),
               "threads": int(threads or member.threads)}
    write_predictions(work / EVAL_FILE, image_ids, probs)
    atomic_write_json(work / SUMMARY_FILE, summary)
    atomic_write_text(work / DONE_FILE, f"{member.run_name}\n")
    if not quiet:
        from ensemble_core.progress import echo
        echo(f"[predict] {member.run_name}: {len(paths)} image(s) x {views} view(s) in {seconds:.1f}s "
             f"({summary['images_per_s']:.1f} images/s)")
    return summary
