import pickle

import cv2
import numpy as np
import pytest

from ensemble_core.data.images import ImageCache, ImageDataset, build_transforms, load_image, to_rgb
from ensemble_core.data.layout import load_dataset
from ensemble_core.errors import DataError
from ensemble_core.registry import ComponentSpec


def write(path, arr):
    assert cv2.imwrite(str(path), arr)
    return path


def test_colour_conversions(tmp_path):
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR
    rgb = load_image(write(tmp_path / "red.png", bgr))
    assert rgb.shape == (10, 12, 3) and rgb.dtype == np.uint8 and tuple(rgb[0, 0]) == (255, 0, 0)
    gray = load_image(write(tmp_path / "g.png", np.full((10, 12), 77, np.uint8)))
    assert gray.shape == (10, 12, 3) and (gray == 77).all()
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 200, 128
    rgba = load_image(write(tmp_path / "a.png", bgra))
    assert rgba.shape == (10, 12, 3) and tuple(rgba[0, 0]) == (0, 0, 200)
    deep = load_image(write(tmp_path / "d.png", np.full((10, 12, 3), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and (deep == 255).all()
    assert load_image(tmp_path / "red.png", load_size=(5, 6)).shape == (5, 6, 3)
    with pytest.raises(DataError, match="cannot decode"):
        to_rgb(None, "x.jpg")


def test_unreadable_file_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="bad.jpg"):
        load_image(tmp_path / "bad.jpg")


def test_memory_cache_matches_decoding(demo_dir):
    paths = load_dataset(demo_dir).train["path"].tolist()[:20]
    cache = ImageCache(paths, load_size=(16, 12), num_threads=2)
    assert cache.array.shape == (20, 16, 12, 3) and cache.array.dtype == np.uint8
    for i in (0, 7, 19):
        np.testing.assert_array_equal(cache[i], load_image(paths[i], (16, 12)))
    assert cache.rows_of([paths[7], paths[2]]).tolist() == [7, 2]


def test_mixed_sizes_need_load_size(tmp_path):
    a = write(tmp_path / "a.png", np.zeros((10, 10, 3), np.uint8))
    b = write(tmp_path / "b.png", np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(DataError, match=r"b\.png.*load_size"):
        ImageCache([a, b])
    assert ImageCache([a, b], load_size=(8, 8)).array.shape == (2, 8, 8, 3)


def test_memmap_cache_reused_and_picklable(demo_dir, tmp_path):
    paths = load_dataset(demo_dir).train["path"].tolist()[:10]
    first = ImageCache(paths, mode="memmap", cache_dir=tmp_path / "cache")
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and any(f.endswith(".done") for f in files)
    mtime = first.memmap_path.stat().st_mtime_ns
    second = ImageCache(paths, mode="memmap", cache_dir=tmp_path / "cache")
    assert second.memmap_path.stat().st_mtime_ns == mtime  # not decoded again
    np.testing.assert_array_equal(np.asarray(second.array), np.asarray(ImageCache(paths).array))
    blob = pickle.dumps(second)
    assert len(blob) < second.nbytes  # the data is reopened by path, not pickled
    np.testing.assert_array_equal(np.asarray(pickle.loads(blob)[3]), np.asarray(second[3]))
    with pytest.raises(ValueError, match="cache_dir"):
        ImageCache(paths, mode="memmap")


def FakeRegistry():
    """Only what build_transforms needs: a registry holding two albumentations transforms."""
    import albumentations as A

    from ensemble_core.registry import Registry

    registry = Registry()
    for name, factory in (("HorizontalFlip", A.HorizontalFlip), ("CenterCrop", A.CenterCrop)):
        registry.add(ComponentSpec(name, "augmentation", factory))
    return registry


def test_build_transforms_train_vs_eval(demo_dir):
    import torch
    reg = FakeRegistry()
    pre = [{"name": "CenterCrop", "params": {"height": 20, "width": 20}}]
    aug = [{"name": "HorizontalFlip", "params": {"p": 1.0}}]
    train_tf = build_transforms(pre, aug, (16, 12), reg, train=True)
    eval_tf = build_transforms(pre, aug, (16, 12), reg, train=False)
    names = [type(t).__name__ for t in train_tf.transforms]
    assert names == ["CenterCrop", "HorizontalFlip", "Resize", "Normalize", "ToTensorV2"]
    assert [type(t).__name__ for t in eval_tf.transforms] == ["CenterCrop", "Resize", "Normalize", "ToTensorV2"]
    img = load_image(load_dataset(demo_dir).train["path"].iloc[0])
    a, b = train_tf(image=img)["image"], eval_tf(image=img)["image"]
    assert a.shape == b.shape == (3, 16, 12) and a.dtype == torch.float32
    assert torch.allclose(a, b.flip(2), atol=1e-5)
    assert -3 < float(b.mean()) < 3  # normalised, not 0..255


def test_dataset_with_forked_workers(demo_dir):
    import torch
    from torch.utils.data import DataLoader
    train = load_dataset(demo_dir).train
    cache = ImageCache(train["path"], load_size=(16, 12))
    rows = np.arange(0, len(train), 3)
    tf = build_transforms([], [], (16, 12), FakeRegistry(), train=True)
    ds = ImageDataset(cache, rows, train["label18"].to_numpy()[rows], tf)
    loader = DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context="fork")
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (len(rows), 3, 16, 12) and x.dtype == torch.float32
    assert y.tolist() == train["label18"].to_numpy()[rows].tolist()
    # without targets or transform: 0..1 images and target -1
    img, t = ImageDataset(cache, [0])[0]
    assert img.shape == (3, 16, 12) and 0 <= float(img.min()) and float(img.max()) <= 1 and int(t) == -1
    with pytest.raises(ValueError, match="targets"):
        ImageDataset(cache, [0, 1], [1])
