"""Data loader throughput: first epoch (decode + cache fill) vs cached epochs, with the seed's augmentations.

    python benchmarks/loader.py [DATA] [--limit N] [--epochs 2] [--workers 0 2] [--load-size H W]
                                [--image-size H W] [--batch-size 32] [--mode memory|memmap] [--no-record]
    python benchmarks/loader.py [DATA] --device-path [--rounds 5] [--limit N]     # workers vs device augmentation

``--device-path`` times cached epochs of best.py's augmentations (HorizontalFlip, ShiftScaleRotate,
RandomBrightnessContrast, HueSaturationValue) two ways, interleaved A B A B over ``--rounds`` rounds on
the same images: albumentations per image in the loader (``augment_on: workers``) and batched kornia
on the training device (``augment_on: device``; the CPU, or ``--device cuda``), and reports the median
images/s with min and max, and the median of the per-round ratios. ``--path-workers N`` gives both passes
N DataLoader workers (a GPU host's cores); the batch goes to the device on both.

DATA is a data set root or train folder (default /tmp/maskproxy/train); ``--demo`` builds
and uses the tiny synthetic demo set instead. Augmentations (train): HueSaturationValue,
RandomBrightnessContrast, CLAHE, CenterCrop at the seed's crop ratio (380x350 of 512x384),
then Resize(image size) + Normalize + ToTensor. Prints a table and appends it to
benchmarks/RESULTS.md with date, hardware and the exact command.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def results_path() -> Path:
    """Where the table goes: ``ENSEMBLE_CORE_RESULTS`` when set (as for the other benchmarks), else RESULTS.md."""
    return Path(os.environ.get("ENSEMBLE_CORE_RESULTS", RESULTS))
SEED_CROP = (380 / 512, 350 / 384)  # the seed's CenterCrop(380, 350) on 512x384 photos


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seed_augmentations(load_hw):
    ch, cw = int(load_hw[0] * SEED_CROP[0]), int(load_hw[1] * SEED_CROP[1])
    return [{"name": "HueSaturationValue", "params": {}},
            {"name": "RandomBrightnessContrast", "params": {}},
            {"name": "CLAHE", "params": {}},
            {"name": "CenterCrop", "params": {"height": ch, "width": cw}}]


def registry_or_albumentations():
    """The registered augmentation plugins, or albumentations directly when they are not there yet."""
    from ensemble_core.manager import get_registry
    reg = get_registry()
    needed = ("HueSaturationValue", "RandomBrightnessContrast", "CLAHE", "CenterCrop")
    if all(n in reg["augmentation"] for n in needed):
        return reg, "augmentation plugins"
    import albumentations as A

    from ensemble_core.registry import ComponentSpec

    class Direct:
        def get(self, kind, name, field=None):
            return ComponentSpec(name, "augmentation", getattr(A, name))
    return Direct(), "albumentations directly"


def time_epoch(dataset, batch_size: int, workers: int) -> float:
    import torch
    from torch.utils.data import DataLoader
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        multiprocessing_context="fork" if workers else None, persistent_workers=False)
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += len(x)
    assert n == len(dataset) and x.dtype == torch.float32
    return time.perf_counter() - t0


class DecodeEachTime:
    """No cache: decode from disk on every access (the baseline the cache replaces)."""

    def __init__(self, paths, load_size):
        self.paths, self.load_size = list(paths), load_size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from ensemble_core.data.images import load_image
        return load_image(self.paths[i], self.load_size)


BEST_AUGMENTATIONS = ["HorizontalFlip",
                      {"name": "ShiftScaleRotate", "params": {"shift_limit": 0.06, "scale_limit": 0.1,
                                                              "rotate_limit": 10}},
                      "RandomBrightnessContrast", "HueSaturationValue"]


def device_path_rows(cache, labels, image_hw, batch_size: int, rounds: int, registry, device: str = "cpu",
                     workers: int = 0) -> list[tuple]:
    """Interleaved rounds of (workers + albumentations, then the batch to ``device``) and (uint8 batch to
    ``device`` + batched kornia there) epochs, each with ``workers`` DataLoader workers."""
    import torch
    from torch.utils.data import DataLoader

    from ensemble_core.data.device_augment import build_device_augment, split_augmentations
    from ensemble_core.data.images import ImageDataset, build_transforms

    rows_all = np.arange(len(cache))
    on_workers = ImageDataset(cache, rows_all, labels, build_transforms([], BEST_AUGMENTATIONS, image_hw, registry))
    _, device_refs = split_augmentations(BEST_AUGMENTATIONS, registry)
    augment = build_device_augment(device_refs, registry)
    target = torch.device(device)
    cuda = target.type == "cuda"
    augment = augment.to(target)      # a DeviceAugment (nn.Module): the kornia modules and their buffers
    raw = ImageDataset(cache, rows_all, labels, build_transforms([], [], image_hw, registry, normalize=False),
                       keep_uint8=True)

    def epoch(dataset, device_augment=None) -> float:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=cuda,
                            multiprocessing_context="fork" if workers else None)
        t0 = time.perf_counter()
        n = 0
        for x, _ in loader:
            x = x.to(target, non_blocking=True)
            if device_augment is not None:
                x = device_augment(x)
            assert x.dtype == torch.float32
            n += len(x)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    epoch(on_workers), epoch(raw, augment)   # warm-up
    times = {"workers": [], "device": []}
    for _ in range(rounds):
        times["workers"].append(epoch(on_workers))
        times["device"].append(epoch(raw, augment))
    n = len(cache)
    ratios = [w / d for w, d in zip(times["workers"], times["device"])]
    out = []
    for name, label in (("workers", "cached epoch, albumentations per image in the loader"),
                        ("device", f"cached epoch, uint8 batch + batched kornia on the device ({target.type})")):
        rates = sorted(n / t for t in times[name])
        out.append((label, rates[len(rates) // 2], rates[0], rates[-1]))
    return out, float(np.median(ratios)), min(ratios), max(ratios)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default="/tmp/maskproxy/train")
    ap.add_argument("--demo", action="store_true", help="use a tiny synthetic demo data set")
    ap.add_argument("--limit", type=int, default=None, help="use the first N images")
    ap.add_argument("--epochs", type=int, default=2, help="cached epochs to time after the first")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--load-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="decode threads (default: CPU count)")
    ap.add_argument("--mode", choices=("memory", "memmap"), default="memory")
    ap.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--device-path", action="store_true",
                    help="compare augmentation in the loader with batched augmentation on the device")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for --device-path")
    ap.add_argument("--device", default="cpu", help="--device-path: the training device (cpu, cuda)")
    ap.add_argument("--path-workers", type=int, default=0, help="--device-path: DataLoader workers, both passes")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    from ensemble_core.data.images import ImageCache, ImageDataset, build_transforms, load_image
    from ensemble_core.data.layout import load_dataset

    if args.demo:
        from ensemble_core.data.demo import make_demo
        data = make_demo(Path(tempfile.gettempdir()) / "ensemble_core_demo_bench", n_people=40, n_eval_people=5)
    else:
        data = Path(args.data)
    train = load_dataset(data).train
    paths = train["path"].tolist()[: args.limit]
    labels = train["label18"].to_numpy()[: len(paths)]
    load_hw = tuple(args.load_size) if args.load_size else load_image(paths[0]).shape[:2]
    image_hw = tuple(args.image_size) if args.image_size else load_hw
    registry, aug_source = registry_or_albumentations()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, Path.cwd())] + list(
        sys.argv[1:] if argv is None else argv))
    if args.device_path:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit(f"error: --device {args.device}: torch sees no CUDA device here")
        cache = ImageCache(paths, load_size=args.load_size, num_threads=args.threads)
        rows, ratio, lo, hi = device_path_rows(cache, labels, image_hw, args.batch_size, args.rounds, registry,
                                               device=args.device, workers=args.path_workers)
        gpu = (f", {torch.cuda.get_device_name(torch.device(args.device))}" if args.device.startswith("cuda")
               else ", CPU only")
        text = (f"### loader, device path — {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n\n"
                f"- hardware: {cpu_model()}, {os.cpu_count()} cores (shared; load average "
                f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}, 1 torch thread{gpu}\n"
                f"- command: `{cmd}`\n"
                f"- data: {data} ({len(paths)} images, image size {image_hw[1]}x{image_hw[0]}, batch "
                f"{args.batch_size}, {args.path_workers} workers); augmentations: best.py's (HorizontalFlip, ShiftScaleRotate, "
                f"RandomBrightnessContrast, HueSaturationValue); {args.rounds} interleaved rounds\n\n"
                "| pass | median images/s | min | max |\n|---|---:|---:|---:|\n"
                + "".join(f"| {name} | {med:,.0f} | {mn:,.0f} | {mx:,.0f} |\n" for name, med, mn, mx in rows)
                + f"\ndevice / workers speed: median {ratio:.2f}x (min {lo:.2f}x, max {hi:.2f}x over rounds)\n")
        print(text)
        if not args.no_record:
            from ensemble_core.atomic import atomic_write_text
            results = results_path()
            previous = results.read_text() if results.is_file() else ""
            atomic_write_text(results, previous.rstrip("\n") + "\n\n" + text)
            print(f"appended to {results}")
        return 0
    tf = build_transforms([], seed_augmentations(load_hw), image_hw, registry, train=True)

    for i in range(min(64, len(paths))):  # warm up imports and first-call costs outside the timings
        tf(image=load_image(paths[i], args.load_size))
    rows = []
    # baseline: decode from disk every epoch, no cache
    baseline = ImageDataset(DecodeEachTime(paths, args.load_size), np.arange(len(paths)), labels, tf)
    t = time_epoch(baseline, args.batch_size, 0)
    rows.append(("no cache: decode + augment, every epoch", 0, len(paths), t))
    # first epoch = fill the cache (thread pool) + one pass
    cache_dir = tempfile.mkdtemp(prefix="ensemble_core_cache_") if args.mode == "memmap" else None
    t0 = time.perf_counter()
    cache = ImageCache(paths, load_size=args.load_size, mode=args.mode, cache_dir=cache_dir,
                       num_threads=args.threads)
    fill = time.perf_counter() - t0
    rows.append((f"cache fill only ({cache.num_threads} decode threads, {args.mode})", 0, len(paths), fill))
    ds = ImageDataset(cache, np.arange(len(paths)), labels, tf)
    first = time_epoch(ds, args.batch_size, 0)
    rows.append(("first epoch: cache fill + augment", 0, len(paths), fill + first))
    for w in args.workers:
        times = [time_epoch(ds, args.batch_size, w) for _ in range(args.epochs)]
        rows.append((f"cached epoch (median of {args.epochs})", w, len(paths), float(np.median(times))))

    header = (f"### loader — {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n\n"
              f"- hardware: {cpu_model()}, {os.cpu_count()} cores (shared with other jobs; load average "
              f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}, CPU only\n"
              f"- command: `{cmd}`\n"
              f"- data: {data} ({len(paths)} images, stored {load_image(paths[0]).shape[1]}x"
              f"{load_image(paths[0]).shape[0]} w x h; load size {load_hw[1]}x{load_hw[0]}, "
              f"image size {image_hw[1]}x{image_hw[0]}, batch {args.batch_size}; cache "
              f"{cache.nbytes / 2 ** 20:.0f} MiB)\n"
              f"- augmentations ({aug_source}): HueSaturationValue, RandomBrightnessContrast, CLAHE, "
              f"CenterCrop{tuple(seed_augmentations(load_hw)[3]['params'].values())}, Resize, Normalize, ToTensor\n")
    table = ["| pass | DataLoader workers | images | seconds | images/s |", "|---|---:|---:|---:|---:|"]
    for name, w, n, secs in rows:
        table.append(f"| {name} | {w} | {n} | {secs:.2f} | {n / secs:,.0f} |")
    text = header + "\n" + "\n".join(table) + "\n"
    print(text)
    if not args.no_record:
        results = results_path()
        previous = results.read_text() if results.is_file() else ""
        with open(results, "a") as fh:
            if not previous:
                fh.write("# Benchmark results\n\nMeasured figures only; each entry names its command.\n\n")
            elif not previous.endswith("\n\n"):
                fh.write("\n" if previous.endswith("\n") else "\n\n")
            fh.write(text + "\n")
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
