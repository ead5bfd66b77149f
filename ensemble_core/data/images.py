"""Decode images once, keep them as uint8 RGB arrays, and serve them to torch.

:class:`ImageCache` decodes every image up front (thread pool; OpenCV releases
the GIL), optionally resizing to ``load_size`` ``[h, w]``, into one
``(N, H, W, 3)`` uint8 array held in memory (``mode="memory"``) or in a
memory-mapped file under ``cache_dir`` (``mode="memmap"``, for data larger than
RAM; reused by later runs with the same files and load size). Later epochs
never decode again. :class:`ImageDataset` applies an albumentations transform
per sample and works with forked DataLoader workers (the array is shared
copy-on-write; a memmap is reopened by path after unpickling).
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from dataclasses import asdict, dataclass
from typing import Mapping

import cv2
import numpy as np

from ensemble_core.atomic import atomic_write, atomic_write_json
from ensemble_core.errors import DataError
from ensemble_core.recipe import INTERPOLATIONS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CV2_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                     "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}
assert set(CV2_INTERPOLATION) == set(INTERPOLATIONS)


@dataclass(frozen=True)
class InputConfig:
    """How a member's images become its model's input: normalisation and the resize to ``image_size``.

    ``origin`` says where the values came from (its backbone's weights, the recipe, or the ImageNet default of a
    member without pretrained weights); ``config.json`` records all four (``inputs``)."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    origin: str = "ImageNet statistics (no pretrained weights)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputConfig":
        return cls(tuple(float(x) for x in data["mean"]), tuple(float(x) for x in data["std"]),
                   str(data.get("interpolation") or "bilinear"), str(data.get("origin") or ""))


DEFAULT_INPUTS = InputConfig()


def resolve_inputs(recipe_value: Mapping[str, Any] | None, weights_record: Mapping[str, Any] | None) -> InputConfig:
    """A member's :class:`InputConfig`: what its pretrained weights expect (``weights_record["input_config"]``),
    else ImageNet's statistics; a recipe's ``input_config`` (any of mean / std / interpolation) wins over both."""
    base, origin = DEFAULT_INPUTS.to_dict(), DEFAULT_INPUTS.origin
    expected = (weights_record or {}).get("input_config") or {}
    if expected:
        base.update({k: v for k, v in expected.items() if k in ("mean", "std", "interpolation") and v is not None})
        if base["interpolation"] not in CV2_INTERPOLATION:   # e.g. timm's 'random': resize as most weights do
            base["interpolation"] = "bilinear"
        origin = f"the pretrained weights ({weights_record.get('source', '?')})"
    chosen = {k: v for k, v in (recipe_value or {}).items() if v is not None}
    if chosen:
        base.update(chosen)
        origin = f"{origin}; the recipe's input_config sets {', '.join(sorted(chosen))}"
    return InputConfig.from_dict({**base, "origin": origin})


def to_rgb(img: np.ndarray | None, where: str = "image") -> np.ndarray:
    """An OpenCV ``IMREAD_UNCHANGED`` array (gray, BGR, BGRA, 16-bit) -> HWC uint8 RGB."""
    if img is None or img.size == 0:
        raise DataError(f"{where}: cannot decode image (empty, truncated or not an image). "
                        f"Run `python -m ensemble_core check-data` and fix or skip it")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise DataError(f"{where}: unsupported image with {channels} channels")


def decode_bytes(data: bytes, where: str = "image") -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    return to_rgb(img, where)


def load_image(path: str | Path, load_size: Sequence[int] | None = None) -> np.ndarray:
    """Read one image as HWC uint8 RGB, resized to ``load_size`` ``[h, w]`` when given."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    img = decode_bytes(data, str(path))
    if load_size is not None:
        h, w = int(load_size[0]), int(load_size[1])
        if img.shape[:2] != (h, w):
            interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
            img = cv2.resize(img, (w, h), interpolation=interp)
    return img


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


CACHE_ENV = "ENSEMBLE_CORE_IMAGE_CACHE"


def shared_cache_dir() -> Path | None:
    """The folder of memory-mapped image caches shared by every process and run (``$ENSEMBLE_CORE_IMAGE_CACHE``),
    or None: each process decodes into its own memory."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def image_cache(paths: Sequence[str | Path], load_size: Sequence[int] | None = None) -> "ImageCache":
    """The decoded images of ``paths``: memory-mapped from :func:`shared_cache_dir` when it is set (one file
    per set of files and load size, decoded by whichever process gets there first and mapped by every
    other worker, executor and later run), else decoded into this process's memory."""
    folder = shared_cache_dir()
    if folder is None:
        return ImageCache(paths, load_size=load_size)
    return ImageCache(paths, load_size=load_size, mode="memmap", cache_dir=folder)


# One decoded set of a data set's images per process (see dataset_images); kept until released.
_SHARED: dict[tuple, "ImageCache"] = {}


def _content_key(paths: Sequence[str], load_size: Sequence[int]) -> tuple:
    """What decides a decoded set's content: every file's path, size and modification time, and the load size."""
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest(), (int(load_size[0]), int(load_size[1]))


def dataset_images(dataset: Any, load_size: Sequence[int] | None) -> "ImageCache | None":
    """Every image of ``dataset`` (train and eval tables) decoded once at ``load_size``, shared by every member
    trained in this process (and, with ``$ENSEMBLE_CORE_IMAGE_CACHE``, memory-mapped across processes).

    The data layer owns it: one set per process, keyed by what decides its content (:func:`_content_key`), so a
    changed file or another load size decodes again. None when ``load_size`` is None (images of unknown or
    mixed size: each member loads its own). :func:`release_dataset_images` frees it at the end of a run.
    """
    if load_size is None:
        return None
    frames = [dataset.train] + ([dataset.eval] if getattr(dataset, "eval", None) is not None else [])
    return shared_images([p for frame in frames for p in frame["path"]], load_size)


def shared_images(paths: Sequence[str | Path], load_size: Sequence[int] | None) -> "ImageCache | None":
    """The images at ``paths`` decoded once per process at ``load_size`` (see :func:`dataset_images`: one set held
    at a time, keyed by the files' content and the load size); None when ``load_size`` is None or no paths."""
    if load_size is None:
        return None
    paths = list(dict.fromkeys(str(p) for p in paths))
    if not paths:
        return None
    key = _content_key(paths, load_size)
    if key not in _SHARED:
        _SHARED.clear()   # keep one decoded set in memory at a time
        _SHARED[key] = image_cache(paths, load_size=load_size)
    return _SHARED[key]


def release_dataset_images() -> None:
    """Forget the process's shared decoded images (their memory is freed once no member holds them)."""
    _SHARED.clear()


class ImageCache:
    """Every image of ``paths`` decoded once into a ``(N, H, W, 3)`` uint8 array.

    ``load_size`` ``[h, w]`` resizes on load (required when image sizes differ).
    ``mode="memmap"`` stores the array in ``cache_dir`` as one contiguous file, written atomically and
    reused when the same files (paths, sizes, modification times) are cached again at the same size; a
    changed file gives another key, and a cache file of the wrong length (cut short) is never mapped:
    it is decoded again.
    """

    def __init__(self, paths: Sequence[str | Path], load_size: Sequence[int] | None = None,
                 mode: str = "memory", cache_dir: str | Path | None = None, num_threads: int | None = None):
        if mode not in ("memory", "memmap"):
            raise ValueError(f"ImageCache mode must be 'memory' or 'memmap', got {mode!r}")
        if mode == "memmap" and cache_dir is None:
            raise ValueError("ImageCache mode='memmap' needs cache_dir (a folder with room for the decoded images)")
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise DataError("ImageCache: no images to load")
        self.load_size = None if load_size is None else (int(load_size[0]), int(load_size[1]))
        self.mode = mode
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.num_threads = num_threads or _default_threads()
        self.index = {p: i for i, p in enumerate(self.paths)}
        self.array: np.ndarray = self._fill()

    # ---- building ----------------------------------------------------------
    def _shape(self) -> tuple[int, int]:
        if self.load_size is not None:
            return self.load_size
        return tuple(load_image(self.paths[0]).shape[:2])  # type: ignore[return-value]

    def _key(self) -> str:
        h = hashlib.sha1()
        h.update(json.dumps(self.load_size).encode())
        for p in self.paths:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def _fill(self) -> np.ndarray:
        h, w = self._shape()
        shape = (len(self.paths), h, w, 3)
        if self.mode == "memmap":
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            key = self._key()
            self.memmap_path = self.cache_dir / f"images-{key}-{shape[0]}x{h}x{w}.u8"
            done = self.memmap_path.with_suffix(".done")
            if done.is_file() and self.memmap_path.is_file():
                if self.memmap_path.stat().st_size == int(np.prod(shape)):
                    return np.memmap(self.memmap_path, dtype=np.uint8, mode="r", shape=shape)
                done.unlink(missing_ok=True)   # cut short (a full disk, a copy): never mapped, decoded again

            def fill(tmp: Path) -> None:
                arr = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
                self._decode_into(arr, h, w)
                arr.flush()
                del arr

            atomic_write(self.memmap_path, fill)
            atomic_write_json(self.memmap_path.with_suffix(".done"), {"n": shape[0], "h": h, "w": w})
            return np.memmap(self.memmap_path, dtype=np.uint8, mode="r", shape=shape)
        arr = np.empty(shape, dtype=np.uint8)
        self._decode_into(arr, h, w)
        return arr

    def _decode_into(self, arr: np.ndarray, h: int, w: int) -> None:
        def put(i: int) -> None:
            img = load_image(self.paths[i], self.load_size)
            if img.shape[:2] != (h, w):
                raise DataError(f"{self.paths[i]}: image is {img.shape[1]}x{img.shape[0]} (w x h) but earlier "
                                f"images are {w}x{h}; set load_size [h, w] to resize on load")
            arr[i] = img

        with ThreadPoolExecutor(self.num_threads) as pool:
            list(pool.map(put, range(len(self.paths))))

    # ---- access ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.array[i]

    def rows_of(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Cache rows of ``paths`` (each must be in the cache)."""
        try:
            return np.array([self.index[str(p)] for p in paths], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]} is not in this ImageCache") from None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.array.shape))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.mode == "memmap":  # reopen by path instead of pickling the data (spawn workers)
            state["array"] = None
            state["_shape_"] = self.array.shape
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        shape = state.pop("_shape_", None)
        self.__dict__.update(state)
        if self.array is None:
            self.array = np.memmap(self.memmap_path, dtype=np.uint8, mode="r", shape=shape)


def _import_torch():
    import torch
    return torch


class ImageDataset:
    """``cache[rows[i]]`` through ``transform`` -> ``(CHW float tensor, target)``.

    ``targets`` is aligned with ``rows`` (``(N,)`` or ``(N, k)`` ints); ``None``
    for unlabelled data (the target is then ``-1``). ``transform`` is an
    albumentations transform (``build_transforms``) or ``None`` (scale to 0..1).
    """

    def __init__(self, cache: ImageCache, rows: Sequence[int], targets: Sequence | np.ndarray | None = None,
                 transform=None, keep_uint8: bool = False):
        self.cache = cache
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = None if targets is None else np.asarray(targets)
        if self.targets is not None and len(self.targets) != len(self.rows):
            raise ValueError(f"ImageDataset: {len(self.rows)} rows but {len(self.targets)} targets")
        self.transform = transform
        self.keep_uint8 = keep_uint8   # a uint8 tensor from the transform stays uint8 (augmented on the device)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        torch = _import_torch()
        img = np.asarray(self.cache[int(self.rows[i])])
        if self.transform is not None:
            out = self.transform(image=img)["image"]
        else:
            out = img.astype(np.float32) / 255.0
        if not isinstance(out, torch.Tensor):
            out = np.ascontiguousarray(out)
            if out.dtype == np.uint8:
                out = out.astype(np.float32) / 255.0
            out = torch.from_numpy(out.transpose(2, 0, 1).copy())
        if not (self.keep_uint8 and out.dtype == torch.uint8):
            out = out.float()
        target = -1 if self.targets is None else self.targets[i]
        return out, torch.as_tensor(target, dtype=torch.long)


# ---------------------------------------------------------------- transforms
def build_transforms(preprocess_specs: Sequence[Any] | None, augmentation_specs: Sequence[Any] | None,
                     image_size: Sequence[int], registry=None, train: bool = True, normalize: bool = True,
                     inputs: InputConfig = DEFAULT_INPUTS):
    """Per-member albumentations pipeline: preprocess (always) + augmentations (train only)
    + Resize(image_size, ``inputs.interpolation``) + Normalize(``inputs.mean`` / ``inputs.std``) + ToTensorV2.
    ``normalize=False`` leaves the image uint8 (``augment_on: device``: the device scales, augments and
    normalises the batch).

    Specs are component refs (``"CLAHE"`` or ``{"name": ..., "params": {...}}``) of kind
    ``augmentation``, built through ``registry``.
    """
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    steps = []
    specs = list(preprocess_specs or []) + (list(augmentation_specs or []) if train else [])
    for spec in specs:
        steps.append(registry.build("augmentation", spec, field="augmentations"))
    h, w = int(image_size[0]), int(image_size[1])
    steps.append(A.Resize(h, w, interpolation=CV2_INTERPOLATION[inputs.interpolation]))
    if normalize:
        steps.append(A.Normalize(mean=inputs.mean, std=inputs.std))
    steps.append(ToTensorV2())
    return A.Compose(steps)
