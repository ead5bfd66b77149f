"""Speed of `python -m ensemble_core predict` on a finished run (issue 27): new images in minutes, no retraining.

    python benchmarks/predict_speed.py RUN_DIR [IMAGES]   # IMAGES default: the eval images of the run's data folder
    python benchmarks/predict_speed.py runs/best /data/second-images --executor process
    python benchmarks/predict_speed.py --tiny             # CPU smoke: trains recipes/best.py tiny on demo data first

The whole command as a user runs it (``ensemble_core.predict.predict``, in this process after the imports, whose
seconds are reported apart): every check (recipe, members, weights loaded and fitted, every image decoded once
to check it), each member's one pass over the images (decoded once per load size, batched, every TTA view), the
voter refitted on the out-of-fold predictions, the stored decision, the writes. images/s = images / wall
seconds of that call. Beside it: the run's own training wall time (run.json ``wall_seconds``, every run command
summed) and, when IMAGES are the run's eval images, whether submission.csv equals the run's byte for byte.
``--export`` also exports the run and predicts from the export.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import data_label, device_kind, results_module  # noqa: E402


def run_benchmark(run_dir: Path, images: Path | None, out: Path, executor: str | None, threads: int | None,
                  device: str | None, with_export: bool) -> dict:
    t0 = time.perf_counter()
    import albumentations  # noqa: F401 - what the command imports before any work
    import timm  # noqa: F401
    import torch  # noqa: F401

    from ensemble_core.pipeline import read_run_info, resolve_data_dir
    from ensemble_core.predict import export, predict
    from ensemble_core.runfolder import SUBMISSION_FILE
    import_s = time.perf_counter() - t0

    info = read_run_info(run_dir)
    own_eval = images is None
    if images is None:
        images = resolve_data_dir(None, run_dir)
    rows = []
    sources = [("run folder", run_dir)]
    if with_export:
        start = time.perf_counter()
        exported = export(run_dir, out / "export", quiet=True)
        sources.append((f"export ({time.perf_counter() - start:.1f} s to write)", exported))
    for label, source in sources:
        target = out / f"predict-{len(rows)}"
        record = predict(source, images, out=target, executor=executor, threads=threads, device=device, quiet=True)
        same = None
        if own_eval:
            same = (target / SUBMISSION_FILE).read_bytes() == (run_dir / SUBMISSION_FILE).read_bytes()
        rows.append({"source": label, "record": record, "same": same})
    first = rows[0]["record"]
    return {"run_dir": str(run_dir), "recipe": first["recipe"], "images": first["images"],
            "n_images": first["n_images"], "members": first["members"], "rows": rows, "import_s": import_s,
            "train_s": info.get("wall_seconds"), "device": device_kind() if (device or "cuda") != "cpu" else "CPU",
            "data": info.get("data_note") or data_label(info.get("data_dir", "?"), tiny=False),
            "executor": executor or "local", "threads": threads}


def table(r: dict) -> list[str]:
    lines = ["| member | backbone | image | views | seconds | images/s |", "|---|---|---|---:|---:|---:|"]
    for m in r["members"]:
        lines.append(f"| {m['run_name']} | {m['backbone']} | {m['image_size'][0]}x{m['image_size'][1]} | "
                     f"{m['views']} | {m['seconds']:.2f} | {m['images_per_s']:.1f} |")
    lines += ["", "| predict from | wall time (s) | members (s) | **images/s** | submission.csv = the run's |",
              "|---|---:|---:|---:|---|"]
    for row in r["rows"]:
        rec = row["record"]
        same = "n/a (other images)" if row["same"] is None else ("yes, byte for byte" if row["same"] else "**no**")
        lines.append(f"| {row['source']} | {rec['seconds']:.1f} | {rec['member_seconds']:.1f} | "
                     f"**{rec['images_per_s']:.1f}** | {same} |")
    train = "n/a" if r["train_s"] is None else f"{r['train_s']:.0f}"
    lines += ["", "| | value |", "|---|---|",
              f"| recipe / members | {r['recipe']} / {len(r['members'])} |",
              f"| images | {r['images']} |",
              f"| imports before the command's work (s, not in the rate) | {r['import_s']:.1f} |",
              f"| the run's training wall time (s, run.json) | {train} |",
              f"| executor / threads | {r['executor']} / {r['threads'] or 'each member its own'} |",
              f"| device | {r['device']} |", f"| data | {r['data']} |"]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", nargs="?", help="a finished recipe run folder")
    ap.add_argument("images", nargs="?", help="images to predict (default: the run's own eval images)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke: train recipes/best.py tiny on demo data first")
    ap.add_argument("--executor", default=None, help="local (default), process or ray")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per member (default: each its own)")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when available)")
    ap.add_argument("--export", action="store_true", help="also export the run and predict from the export")
    ap.add_argument("--out", default=None, help="folder for the predictions (default: a temporary folder)")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    if args.run_dir is None and not args.tiny:
        ap.error("give RUN_DIR (a finished recipe run) or --tiny")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ens-predict-"))
    from ensemble_inference import tiny_run   # the same tiny best.py run on demo data
    run_dir = Path(args.run_dir).resolve() if args.run_dir else tiny_run(work)
    device = args.device or ("cpu" if args.tiny else None)
    result = run_benchmark(run_dir, Path(args.images) if args.images else None, work, args.executor, args.threads,
                           device, args.export)
    lines = table(result)
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results(
            f"predict speed: {result['recipe']} — {'tiny CPU smoke' if args.tiny else result['device']}", lines,
            notes=f"run folder {run_dir}; `python -m ensemble_core predict` with the run's own weights, no training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
