"""The member's samples, images and data loaders, built from the data layer (``ensemble_core.data.images``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ensemble_core.data.device_augment import build_device_augment, split_augmentations
from ensemble_core.data.images import DEFAULT_INPUTS, ImageCache, ImageDataset, InputConfig, build_transforms, image_cache
from ensemble_core.errors import TrainingError
from ensemble_core.labels import Task


@dataclass
class MemberSamples:
    """The rows one member trains and validates on, already filtered with ``Task.rows``."""

    train: pd.DataFrame
    val: pd.DataFrame
    eval: pd.DataFrame | None
    train_targets: np.ndarray
    val_targets: np.ndarray
    val_truth: np.ndarray


def select_samples(task: Task, dataset: Any, split: tuple[Sequence[int], Sequence[int]],
                   refit: bool = False) -> MemberSamples:
    """The member's rows; a ``refit`` member's split has training rows only (every person)."""
    table = dataset.train
    train_rows, val_rows = (np.asarray(r, dtype=np.int64) for r in split)
    for name, rows in (("train", train_rows), ("validation", val_rows)):
        if len(rows) and (rows.min() < 0 or rows.max() >= len(table)):
            raise TrainingError(f"split: {name} row {int(rows.max())} is outside the train table "
                                f"({len(table)} rows); the split was made for another data set — "
                                f"delete the split manifest to recompute it")
    if np.intersect1d(train_rows, val_rows).size:
        raise TrainingError("split: some rows are both in train and validation; splits must be disjoint")
    train = table.iloc[train_rows]
    val = table.iloc[val_rows]
    train = train[task.rows(train)].reset_index(drop=True)
    val = val[task.rows(val)].reset_index(drop=True)
    if refit and len(val_rows):
        raise TrainingError(f"task {task.name!r}: a refit member trains on every person, but its split has "
                            f"{len(val_rows)} validation rows; the splits do not match the planned members "
                            f"(does the splitter make n_splits splits?)")
    if len(train) == 0 or (len(val) == 0 and not refit):
        raise TrainingError(f"task {task.name!r}: the split leaves {len(train)} training and {len(val)} validation "
                            f"samples; a member needs both (check the data set and the task's rows)")
    eval_df = getattr(dataset, "eval", None)
    if eval_df is not None and len(eval_df) == 0:
        eval_df = None
    return MemberSamples(train, val, eval_df, task.targets(train), task.targets(val), task.truth(val))


def member_eval_transform(member, registry, inputs: InputConfig | Mapping[str, Any] | None = None):
    """The transform a member validates and predicts with: its preprocess, the resize to ``eval_image_size``
    (default ``image_size``: train low, test high) with its interpolation, its normalisation, tensor. The one
    builder of it: the trainer's validation / eval loaders and ``predict`` (a finished member on new images) both
    call it.

    ``inputs``: the member's :class:`InputConfig`, or what its ``config.json`` records (``"inputs"``: mean, std,
    interpolation), or None for a member that records nothing (trained before inputs were recorded: ImageNet's
    statistics, bilinear). A record that cannot be read is refused, never replaced by the defaults."""
    if inputs is None:
        inputs = DEFAULT_INPUTS
    elif not isinstance(inputs, InputConfig):
        try:
            inputs = InputConfig.from_dict(inputs)
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"member {getattr(member, 'run_name', '?')}: its config.json records inputs "
                                f"{dict(inputs)!r} that cannot be read ({type(exc).__name__}: {exc}); train it "
                                f"again or export the run again") from None
    eval_size = member.eval_image_size or member.image_size
    return build_transforms(member.preprocess, [], eval_size, registry, train=False, inputs=inputs)


def eval_batch_size(member) -> int:
    """Images per validation / prediction batch: ``eval_batch_size``, default twice the training batch."""
    return int(member.eval_batch_size or 2 * member.batch_size)


def image_cache_for(paths: Sequence[str], load_size: Sequence[int] | None, given: ImageCache | None) -> ImageCache:
    """Use ``given`` when it holds every path at the member's load size; else decode the paths once."""
    if given is not None:
        same_size = load_size is None or given.load_size == (int(load_size[0]), int(load_size[1]))
        if same_size and all(str(p) in given.index for p in paths):
            return given
    return image_cache(list(paths), load_size=load_size)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one training sample's augmentation: a function of (member seed, epoch, sample) only."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


class EpochSeededSamples(torch.utils.data.Dataset):
    """Training samples whose random augmentation depends only on (member seed, epoch, sample index).

    A stream seeded once would restart in a resumed process (and be copied into every loader worker),
    so a resumed member, even one stopped mid-epoch, would see other augmented images than a member
    that was never stopped. Reseeding the transform before each sample makes them the same everywhere.
    """

    def __init__(self, samples: ImageDataset, seed: int):
        self.samples, self.seed, self.epoch = samples, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        transform = self.samples.transform
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(sample_seed(self.seed, self.epoch, i))
        return self.samples[i]


def loader_generator(seed: int, epoch: int | None = None) -> torch.Generator:
    """A DataLoader's own generator (it seeds the loader's workers): creating a loader then draws nothing
    from torch's global generator, whose stream (batch augmentation) a checkpoint saves and restores."""
    key = [int(seed)] if epoch is None else [int(seed), int(epoch), 1]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def seeded_worker_init(worker_id: int) -> None:
    import random
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class MemberLoaders:
    """Train / validation / eval loaders over one image cache, with a seed-determined training order."""

    def __init__(self, samples: MemberSamples, member, registry, image_cache: ImageCache | None, seed: int,
                 pin_memory: bool = False, inputs: InputConfig = DEFAULT_INPUTS):
        labelled = list(dict.fromkeys(str(p) for p in list(samples.train["path"]) + list(samples.val["path"])))
        self.cache = image_cache_for(labelled, member.load_size, image_cache)
        self.eval_cache = None
        if samples.eval is not None:  # a shared cache of the train table alone still serves train/val
            eval_paths = list(dict.fromkeys(str(p) for p in samples.eval["path"]))
            self.eval_cache = image_cache_for(eval_paths, member.load_size, image_cache)
        self.batch_size = int(member.batch_size)
        self.eval_batch_size = eval_batch_size(member)
        self.num_workers = int(member.num_workers)
        self.pin_memory = pin_memory
        self.seed = seed
        self._val_loader: DataLoader | None = None
        on_device = member.augment_on == "device"
        worker_augs, device_augs = (split_augmentations(member.augmentations, registry) if on_device
                                    else (member.augmentations, []))
        self.device_augment = build_device_augment(device_augs, registry, inputs) if on_device else None
        train_tf = build_transforms(member.preprocess, worker_augs, member.image_size, registry, train=True,
                                    normalize=not on_device, inputs=inputs)
        eval_tf = member_eval_transform(member, registry, inputs)
        if hasattr(train_tf, "set_random_seed"):
            train_tf.set_random_seed(seed)
        self.train_set = EpochSeededSamples(ImageDataset(self.cache, self.cache.rows_of(samples.train["path"]),
                                                         samples.train_targets, train_tf, keep_uint8=on_device),
                                            seed)
        self.val_set = ImageDataset(self.cache, self.cache.rows_of(samples.val["path"]), samples.val_targets, eval_tf)
        self.eval_set = None if samples.eval is None else \
            ImageDataset(self.eval_cache, self.eval_cache.rows_of(samples.eval["path"]), None, eval_tf)

    @property
    def drop_last(self) -> bool:
        # a last batch of one sample breaks BatchNorm; drop the remainder when there is a full batch
        return len(self.train_set) > self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        n, b = len(self.train_set), self.batch_size
        return n // b if self.drop_last else 1

    def _loader(self, dataset, batch_size: int, order=None, drop_last: bool = False,
                persistent: bool = False, epoch: int | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=order, shuffle=False, drop_last=drop_last,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          worker_init_fn=seeded_worker_init if self.num_workers else None,
                          persistent_workers=persistent and self.num_workers > 0,
                          generator=loader_generator(self.seed, epoch))

    def train_loader(self, order: np.ndarray, epoch: int = 0) -> DataLoader:
        """The batches of ``epoch`` in ``order`` (the epoch's remaining samples, see ``epoch_order``)."""
        self.train_set.set_epoch(epoch)
        return self._loader(self.train_set, self.batch_size, order=order.tolist(), drop_last=self.drop_last,
                            epoch=epoch)

    def val_loader(self) -> DataLoader:
        # built once: validation runs after each scored epoch (twice with EMA) with no randomness, so its workers
        # stay up between passes instead of being forked again each time
        if self._val_loader is None:
            self._val_loader = self._loader(self.val_set, self.eval_batch_size, persistent=True)
        return self._val_loader

    def eval_loader(self) -> DataLoader | None:
        return None if self.eval_set is None else self._loader(self.eval_set, self.eval_batch_size)
