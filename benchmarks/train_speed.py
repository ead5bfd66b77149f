"""Training speed: the library's trainer vs a plain timm + PyTorch loop, same model, batch size,
precision, image size and the same decoded images, in one process; images/s and their ratio.

    python benchmarks/train_speed.py                          # GPU: efficientnet_b3 and resnext50d_32x4d on /tmp/maskproxy
    python benchmarks/train_speed.py --compile                # also both sides under torch.compile
    python benchmarks/train_speed.py --tiny                   # CPU smoke: test_efficientnet, 32x32, a few steps

Both sides read one ``ImageCache`` (images decoded once at the model's input size) through a
DataLoader with the same workers and pinned memory (on CUDA), run ``warmup`` steps that are not
timed, then ``steps`` timed steps (CUDA synchronised at both ends), AdamW + cross-entropy on the
18 classes, bf16 autocast + channels_last on CUDA, fp32 on CPU.

- plain: ``timm.create_model`` and a hand-written loop; the DataLoader yields uint8 HWC images
  which are normalised on the device; no per-step host sync (the loss is read at the end).
- library: the trainer's own code path: ``MemberTrainer`` builds model, loss, optimizer, loaders and
  precision from a recipe member, and ``ensemble_core.train.loop.train_one_epoch`` runs the steps;
  its ``progress`` argument (the hook the tqdm bar uses) is the step timer. Per-sample transforms
  are the trainer's albumentations pipeline (Resize + Normalize + ToTensor in the workers).
- library + augmentations: the same with the seed's per-sample augmentations, to show their cost,
  on the loader workers (albumentations) and on the device (``augment_on: device``, kornia).
- synthetic batch: the plain loop's model, optimizer and precision on one random batch made once on the
  device (no loader, no augmentation): the model's own speed. The last column is the trainer with the
  device data path over it (issue 13's GPU target: >= 0.9x for efficientnet_b0 and resnet18 at 200x200:
  ``--models efficientnet_b0 resnet18 --image-size 200 200``).

Sides run interleaved, synthetic, plain then library, for ``--rounds`` rounds (default 5) on the same batches:
a shared machine's load moves between minutes, so one-after-the-other ratios drift (0.83x then 1.26x
for the same command). The table gives medians over rounds and the ratio's median, min and max.
"""
from __future__ import annotations


import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import DEFAULT_DATA, demo_data, device_kind, results_module  # noqa: E402

GPU_MODELS = ("efficientnet_b3", "resnext50d_32x4d")
SEED_AUGMENTATIONS = ["RandomBrightnessContrast", "HueSaturationValue", "HorizontalFlip"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class StepTimer:
    """Stands in for the progress bar ``train_one_epoch`` updates after every step: records the time
    after ``warmup`` steps and after the last step, synchronising CUDA at those two points only."""

    def __init__(self, warmup: int, total: int, cuda: bool):
        self.warmup, self.total, self.cuda = warmup, total, cuda
        self.steps = 0
        self.t_start = self.t_end = None

    def _now(self) -> float:
        if self.cuda:
            import torch
            torch.cuda.synchronize()
        return time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.steps += n
        if self.steps == self.warmup:
            self.t_start = self._now()
        if self.steps == self.total:
            self.t_end = self._now()

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def images_per_s(self, batch_size: int) -> float:
        if self.t_start is None or self.t_end is None:
            raise RuntimeError(f"StepTimer saw {self.steps} steps; expected {self.total} (warm-up {self.warmup})")
        return (self.total - self.warmup) * batch_size / (self.t_end - self.t_start)


# ---------------------------------------------------------------- data
def load_images(data_dir: Path, image_size: list[int], n_images: int):
    """The first ``n_images`` train images (and 64 more for the trainer's validation rows), decoded
    once at ``image_size``; returns (dataset, cache, train_rows, val_rows)."""
    from ensemble_core.data.images import ImageCache
    from ensemble_core.data.layout import load_dataset

    ds = load_dataset(data_dir)
    n_val = min(64, max(1, len(ds.train) // 5))
    n_train = min(n_images, len(ds.train) - n_val)
    train_rows, val_rows = np.arange(n_train), np.arange(n_train, n_train + n_val)
    table = ds.train.iloc[: n_train + n_val].reset_index(drop=True)
    cache = ImageCache(list(table["path"]), load_size=image_size)
    return SimpleNamespace(train=table, eval=None), cache, train_rows, val_rows


def step_order(n: int, batch_size: int, total_steps: int, seed: int = 0) -> np.ndarray:
    """``total_steps`` full batches of row positions: a seeded permutation, repeated as needed."""
    order = np.random.default_rng(seed).permutation(n)
    return np.resize(order, total_steps * batch_size)


# ---------------------------------------------------------------- plain loop
class PlainImages:
    """Cached uint8 images as they are (HWC) with their 18-class label: the DataLoader's job is only to batch."""

    def __init__(self, cache, rows, labels):
        self.cache, self.rows, self.labels = cache, np.asarray(rows), np.asarray(labels)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import torch
        return torch.from_numpy(np.ascontiguousarray(self.cache[int(self.rows[i])])), int(self.labels[i])


def plain_model(model_name: str, cfg, device):
    """(model, forward, optimizer) of the plain and synthetic loops: timm from scratch, seeded, channels_last
    on CUDA, AdamW; ``forward`` is the compiled model under ``--compile``."""
    import timm
    import torch
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=18).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if cfg.compile else model
    return model, forward, torch.optim.AdamW(model.parameters(), lr=1e-3)


def synthetic_loop(model_name: str, cfg) -> float:
    """The model alone: one random batch made once on the device and reused for every step (no loader, no
    augmentation), with the plain loop's model, optimizer and precision: the speed a data path is measured
    against (issue 13: the trainer with the device data path should reach >= 0.9x of it on a GPU)."""
    import torch

    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    model, forward, optimizer = plain_model(model_name, cfg, device)
    h, w = cfg.image_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(cfg.batch_size, 3, h, w, generator=generator).to(device)
    images = images.contiguous(memory_format=torch.channels_last if cuda else torch.contiguous_format)
    targets = torch.randint(0, 18, (cfg.batch_size,), generator=generator).to(device)
    model.train()
    total = cfg.warmup + cfg.steps
    return timed_steps(f"synthetic loop {model_name}", ((images, targets) for _ in range(total)), forward,
                       optimizer, device, cfg)


def timed_steps(label: str, batches, forward, optimizer, device, cfg) -> float:
    """AdamW + cross-entropy steps over ``batches`` (device tensors, ready for the model), bf16 autocast on
    CUDA; images/s over the steps after ``cfg.warmup`` (no per-step host sync: the loss is read at the end)."""
    import torch
    import torch.nn.functional as F

    cuda = device.type == "cuda"
    timer = StepTimer(cfg.warmup, cfg.warmup + cfg.steps, cuda)
    loss_sum = torch.zeros((), device=device)
    for images, targets in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = forward(images)
        loss = F.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        timer.update()
    if not torch.isfinite(loss_sum):
        raise RuntimeError(f"{label}: non-finite loss")
    return timer.images_per_s(cfg.batch_size)


def plain_loop(model_name: str, dataset, cache, rows, cfg) -> float:
    import torch
    from torch.utils.data import DataLoader

    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    model, forward, optimizer = plain_model(model_name, cfg, device)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    labels = dataset.train["label18"].to_numpy()[rows]
    total = cfg.warmup + cfg.steps
    loader = DataLoader(PlainImages(cache, cache.rows_of(dataset.train["path"].iloc[rows]), labels),
                        batch_size=cfg.batch_size, sampler=step_order(len(rows), cfg.batch_size, total).tolist(),
                        num_workers=cfg.workers, pin_memory=cuda, drop_last=True)
    layout = torch.channels_last if cuda else torch.contiguous_format

    def batches():     # uint8 HWC from the loader, normalised on the device
        for images, targets in loader:
            images = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            yield ((images - mean) / std).contiguous(memory_format=layout), targets.to(device, non_blocking=True)
    model.train()
    return timed_steps(f"plain loop {model_name}", batches(), forward, optimizer, device, cfg)


# ---------------------------------------------------------------- library trainer
def library_loop(model_name: str, dataset, cache, train_rows, val_rows, cfg, augmentations: list,
                 augment_on: str = "workers") -> float:
    from ensemble_core.recipe import Recipe
    from ensemble_core.stopping import stop_requested
    from ensemble_core.train.loop import NonFiniteGuard, train_one_epoch
    from ensemble_core.train.member import MemberTrainer
    from ensemble_core.manager import get_registry

    member = Recipe.from_dict({
        "name": "speed", "seed": 0, "split": {"name": "shuffle", "params": {"n_splits": 1}},
        "tasks": [{"task": "all18", "backbone": {"name": model_name, "params": {"pretrained": False}},
                   "image_size": list(cfg.image_size), "load_size": list(cfg.image_size),
                   "batch_size": cfg.batch_size, "num_workers": cfg.workers, "augmentations": augmentations,
                   "optimizer": {"name": "adamw", "params": {"lr": 1e-3}}, "loss": "cross_entropy",
                   "tta": [], "compile": bool(cfg.compile), "augment_on": augment_on,
                   "threads": cfg.threads}]}).plan()[0]
    with tempfile.TemporaryDirectory(prefix="speed-") as run_dir:
        trainer = MemberTrainer(member, dataset, (train_rows, val_rows), Path(run_dir), device=cfg.device,
                                quiet=True, image_cache=cache, registry=get_registry())
        total = cfg.warmup + cfg.steps
        loader = trainer.loaders.train_loader(step_order(len(trainer.loaders.train_set), cfg.batch_size, total))
        timer = StepTimer(cfg.warmup, total, trainer.device.type == "cuda")
        train_one_epoch(trainer.forward_model, loader, trainer.loss_fn, trainer.optimizer, trainer.schedule,
                        trainer.scaler, trainer.precision, NonFiniteGuard(int(member.max_nonfinite_steps)), 0,
                        trainer.batch_augmentation, trainer.ema, member.grad_clip, timer,
                        should_stop=stop_requested,
                        device_augment=trainer.device_augment)   # as MemberTrainer.train_epoch calls it
        return timer.images_per_s(cfg.batch_size)


# ---------------------------------------------------------------- main
def measure(models, dataset, cache, train_rows, val_rows, cfg, with_augmentations: bool) -> list[dict]:
    """Per model, ``cfg.rounds`` interleaved rounds (synthetic batch, plain, library, library + augmentations on
    the workers, library + augmentations on the device); medians over rounds, and the per-round library / plain
    and device path / synthetic ratios."""
    import torch
    rows = []
    for name in models:
        runs: dict[str, list[float]] = {"synthetic": [], "plain": [], "library": [], "library_aug": [],
                                        "library_device": []}
        for _ in range(cfg.rounds):
            runs["synthetic"].append(synthetic_loop(name, cfg))
            runs["plain"].append(plain_loop(name, dataset, cache, train_rows, cfg))
            runs["library"].append(library_loop(name, dataset, cache, train_rows, val_rows, cfg, []))
            if with_augmentations:
                runs["library_aug"].append(library_loop(name, dataset, cache, train_rows, val_rows, cfg,
                                                        SEED_AUGMENTATIONS))
                runs["library_device"].append(library_loop(name, dataset, cache, train_rows, val_rows, cfg,
                                                           SEED_AUGMENTATIONS, augment_on="device"))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        ratios = [lib / plain for lib, plain in zip(runs["library"], runs["plain"])]
        row = {"model": name, "compile": cfg.compile, "rounds": cfg.rounds,
               "ratio": float(np.median(ratios)), "ratio_min": min(ratios), "ratio_max": max(ratios)}
        if runs["library_device"]:
            device_ratios = [d / syn for d, syn in zip(runs["library_device"], runs["synthetic"])]
            row.update(device_ratio=float(np.median(device_ratios)), device_ratio_min=min(device_ratios),
                       device_ratio_max=max(device_ratios))
        for key, values in runs.items():
            if values:
                row[key] = float(np.median(values))
        rows.append(row)
    return rows


def table(rows: list[dict], cfg) -> list[str]:
    lines = ["| model | torch.compile | synthetic batch (img/s) | plain loop (img/s) | library trainer (img/s) | "
             "ratio library / plain, median (min-max) | + seed augmentations on workers (img/s) | "
             "+ on the device (img/s) | device path / synthetic, median (min-max) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        aug = "n/a" if r.get("library_aug") is None else f"{r['library_aug']:.1f}"
        dev = "n/a" if r.get("library_device") is None else f"{r['library_device']:.1f}"
        dev_ratio = ("n/a" if r.get("device_ratio") is None else
                     f"{r['device_ratio']:.3f} ({r['device_ratio_min']:.3f}-{r['device_ratio_max']:.3f})")
        lines.append(f"| {r['model']} | {'yes' if r['compile'] else 'no'} | {r['synthetic']:.1f} | {r['plain']:.1f} | "
                     f"{r['library']:.1f} | {r['ratio']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f}) | {aug} | "
                     f"{dev} | {dev_ratio} |")
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["compile"]] = r
    for name, pair in by_model.items():
        if True in pair and False in pair:
            lines.append(f"\ncompile speed-up, {name}: plain x{pair[True]['plain'] / pair[False]['plain']:.3f}, "
                         f"library x{pair[True]['library'] / pair[False]['library']:.3f} (steady state; "
                         f"compile time is in the excluded warm-up)")
    lines += ["", f"- batch {cfg.batch_size}, image {cfg.image_size[0]}x{cfg.image_size[1]}, {cfg.warmup} warm-up + "
              f"{cfg.steps} timed steps, {cfg.rounds} interleaved rounds (medians), DataLoader workers "
              f"{cfg.workers}, precision "
              f"{'bf16 autocast + channels_last' if cfg.device.startswith('cuda') else 'fp32'}, "
              f"weights from scratch, device {cfg.device_label}, data {cfg.data_label}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help=f"data folder (default {DEFAULT_DATA}; demo data with --tiny)")
    ap.add_argument("--models", nargs="+", default=None, help=f"timm names (default {' '.join(GPU_MODELS)})")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--steps", type=int, default=None, help="timed steps")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (compile happens here)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers, both sides")
    ap.add_argument("--compile", action="store_true", help="also measure both sides under torch.compile")
    ap.add_argument("--no-augmentations", action="store_true", help="skip the library + augmentations column")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved plain/library rounds (default 5; 2 tiny)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke size: test_efficientnet, 32x32, a few steps")
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)

    import torch
    cuda = torch.cuda.is_available() and not args.tiny
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)
    defaults = (dict(models=["test_efficientnet"], batch_size=16, image_size=[32, 32], steps=6, warmup=2, workers=0,
                     rounds=2)
                if args.tiny else
                dict(models=list(GPU_MODELS), batch_size=64, image_size=[380, 350], steps=40, warmup=10,
                     workers=min(12, len(__import__("os").sched_getaffinity(0))), rounds=5))
    cfg = SimpleNamespace(**{k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()})
    cfg.threads = int(args.threads or (1 if args.tiny else torch.get_num_threads()))   # the member's own threads
    if args.compile and args.warmup is None:
        cfg.warmup = max(cfg.warmup, 15)
    cfg.device = "cuda" if cuda else "cpu"
    cfg.device_label = device_kind() if cuda else "CPU"
    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    data_dir = Path(args.data) if args.data else (demo_data(work / "demo") if args.tiny else DEFAULT_DATA)
    dataset, cache, train_rows, val_rows = load_images(data_dir, cfg.image_size, cfg.batch_size * 64)
    cfg.data_label = (("synthetic demo faces" if args.tiny and not args.data else str(data_dir))
                      + f", first {len(train_rows)} train images decoded once at the input size")
    if len(train_rows) < cfg.batch_size:
        raise SystemExit(f"error: {data_dir} has {len(train_rows)} usable train images; need a batch of "
                         f"{cfg.batch_size} (--batch-size)")
    rows = []
    for compile_ in ([False, True] if args.compile else [False]):
        cfg.compile = compile_
        rows += measure(cfg.models, dataset, cache, train_rows, val_rows, cfg, not args.no_augmentations)
    lines = table(rows, cfg)
    print("\n".join(lines))
    if not args.no_append:
        results_module().append_results(
            f"training speed: library trainer vs plain timm loop — {'tiny CPU smoke' if args.tiny else cfg.device_label}",
            lines, notes="weights from scratch; images/s over the timed steps only (warm-up excluded); "
                         "target: library >= 0.95 x plain for the same model and batch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
