"""Inference speed of a whole ensemble (every member x every test-time view) on the eval set.

    python benchmarks/ensemble_inference.py RUN_DIR          # a finished recipe run (recipe.json, members/*/DONE)
    python benchmarks/ensemble_inference.py --tiny           # CPU smoke: trains a tiny recipe on demo data first

For each member: its ``best.pt`` weights, the trainer's eval transforms, precision and TTA views,
through ``ensemble_core.train.loop.infer`` and ``ensemble_core.train.predict.probs_from_views`` (the
code that wrote ``eval.npz``). Eval images are decoded once per load size before timing (reported
apart); one untimed warm-up batch per member; then the timed pass over every eval image.
images/s = eval images / seconds for all members and views. The fresh probabilities are compared
with the member's cached ``eval.npz`` as a correctness check.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import data_label, device_kind, results_module  # noqa: E402


def build_member_predictor(member, run_dir: Path, registry, device, eval_batch_size: int | None):
    import torch

    from ensemble_core.runfolder import RunFolder
    from ensemble_core.train import components as C
    from ensemble_core.train.inference import load_member_model, read_member_weights

    best = RunFolder(run_dir).prediction_weights
    if not best.is_file():
        raise SystemExit(f"error: {best} not found; {run_dir.name} is not a finished member (rerun the recipe)")
    task, model = load_member_model(member, read_member_weights(best, member.run_name), registry)
    precision = C.choose_precision(member, device)
    model = model.to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.eval()
    views = [None, *C.build_ttas(member, registry)]
    batch = int(eval_batch_size or member.eval_batch_size or 2 * member.batch_size)
    return task, model, precision, views, batch


def eval_loader(member, cache, rows, registry, batch: int, workers: int, pin: bool):
    from torch.utils.data import DataLoader

    from ensemble_core.data.images import ImageDataset
    from ensemble_core.train.inputs import member_eval_transform
    return DataLoader(ImageDataset(cache, rows, None, member_eval_transform(member, registry)), batch_size=batch, shuffle=False, num_workers=workers,
                      pin_memory=pin, persistent_workers=False)


def run_benchmark(run_dir: Path, workers: int, eval_batch_size: int | None, device_name: str | None) -> dict:
    import torch

    from ensemble_core.data.images import ImageCache
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.pipeline import load_recipe_file, read_run_info, resolve_data_dir
    from ensemble_core.runfolder import EVAL_FILE, member_dir
    from ensemble_core.manager import get_registry
    from ensemble_core.train.components import choose_device
    from ensemble_core.train.loop import infer
    from ensemble_core.train.predict import probs_from_views

    recipe = load_recipe_file(run_dir)
    info = read_run_info(run_dir)
    data_dir = resolve_data_dir(None, run_dir)
    dataset = load_dataset(data_dir, exclude=info.get("exclude", []))
    if dataset.eval is None or not len(dataset.eval):
        raise SystemExit(f"error: {data_dir} has no eval images (eval/info.csv); nothing to infer")
    registry = get_registry()
    device = choose_device(device_name)
    members = recipe.plan()
    paths = list(dataset.eval["path"].astype(str))

    t0 = time.perf_counter()
    caches = {}
    for m in members:
        key = None if m.load_size is None else tuple(m.load_size)
        if key not in caches:
            caches[key] = ImageCache(paths, load_size=m.load_size)
    decode_s = time.perf_counter() - t0

    per_member, total_s, passes, max_diff = [], 0.0, 0, 0.0
    for m in members:
        cache = caches[None if m.load_size is None else tuple(m.load_size)]
        rows = cache.rows_of(paths)
        task, model, precision, views, batch = build_member_predictor(m, member_dir(run_dir, m.run_name), registry, device,
                                                                      eval_batch_size)
        loader = eval_loader(m, cache, rows, registry, batch, workers, device.type == "cuda")
        warm = eval_loader(m, cache, rows[:batch], registry, batch, 0, False)
        infer(model, warm, precision, views)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        logits, _ = infer(model, loader, precision, views)
        probs = probs_from_views(task, logits)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        cached = np.load(member_dir(run_dir, m.run_name) / EVAL_FILE, allow_pickle=False)
        order = {i: k for k, i in enumerate(cached["image_id"].astype(str))}
        ref = cached["probs"][[order[i] for i in dataset.eval["image_id"].astype(str)]]
        diff = float(np.abs(ref - probs).max())
        max_diff = max(max_diff, diff)
        total_s += seconds
        passes += len(paths) * len(views)
        per_member.append({"run_name": m.run_name, "backbone": m.backbone["name"], "views": len(views),
                           "image_size": f"{m.image_size[0]}x{m.image_size[1]}", "seconds": seconds,
                           "images_per_s": len(paths) / seconds, "max_abs_diff_vs_eval_npz": diff,
                           "precision": precision.name})
        del model
    return {"run_dir": str(run_dir), "recipe": recipe.name, "n_eval": len(paths), "members": per_member,
            "decode_s": decode_s, "infer_s": total_s, "forward_images": passes,
            "ensemble_images_per_s": len(paths) / total_s, "forward_images_per_s": passes / total_s,
            "max_abs_diff": max_diff, "device": device_kind() if device.type == "cuda" else "CPU",
            "data": info.get("data_note") or data_label(data_dir, tiny=False), "workers": workers}


def table(r: dict) -> list[str]:
    lines = ["| member | backbone | image | views | precision | seconds | eval images/s | max abs diff vs eval.npz |",
             "|---|---|---|---:|---|---:|---:|---:|"]
    for m in r["members"]:
        lines.append(f"| {m['run_name']} | {m['backbone']} | {m['image_size']} | {m['views']} | {m['precision']} | "
                     f"{m['seconds']:.2f} | {m['images_per_s']:.1f} | {m['max_abs_diff_vs_eval_npz']:.2e} |")
    lines += ["", "| whole ensemble | value |", "|---|---|",
              f"| recipe / members | {r['recipe']} / {len(r['members'])} |",
              f"| eval images | {r['n_eval']} |",
              f"| forward passes (members x views x images) | {r['forward_images']} |",
              f"| decode eval images once (s, not in the rate) | {r['decode_s']:.2f} |",
              f"| inference, all members and views (s) | {r['infer_s']:.2f} |",
              f"| **ensemble eval images/s** | **{r['ensemble_images_per_s']:.1f}** |",
              f"| forward images/s | {r['forward_images_per_s']:.1f} |",
              f"| DataLoader workers | {r['workers']} |",
              f"| device | {r['device']} |", f"| data | {r['data']} |"]
    return lines


def tiny_run(work: Path) -> Path:
    from quality import run_quality
    out = work / "run"
    run_quality(str(Path(__file__).resolve().parents[1] / "recipes" / "best.py"), None, out, None, {}, True, True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", nargs="?", help="a finished recipe run folder")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke: train recipes/best.py tiny on demo data first")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 8 on CUDA, 0 on CPU)")
    ap.add_argument("--eval-batch-size", type=int, default=None)
    ap.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when available)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    import torch
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)
    if args.run_dir is None and not args.tiny:
        ap.error("give RUN_DIR (a finished recipe run) or --tiny")
    run_dir = Path(args.run_dir) if args.run_dir else tiny_run(Path(tempfile.mkdtemp(prefix="ens-infer-")))
    device = args.device or ("cpu" if args.tiny else None)
    workers = args.workers if args.workers is not None else (8 if torch.cuda.is_available() and device != "cpu" else 0)
    result = run_benchmark(run_dir, workers, args.eval_batch_size, device)
    lines = table(result)
    print("\n".join(lines))
    if result["max_abs_diff"] > 1e-2:
        print(f"warning: fresh probabilities differ from the cached eval.npz by up to {result['max_abs_diff']:.3g}",
              file=sys.stderr)
    if not args.no_append:
        results_module().append_results(
            f"ensemble inference: {result['recipe']} — {'tiny CPU smoke' if args.tiny else result['device']}", lines,
            notes=f"run folder {run_dir}; weights as trained in that run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
