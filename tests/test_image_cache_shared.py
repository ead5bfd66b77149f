"""The decoded-image cache as one memory-mapped file shared by processes and runs (issue 13, item 1)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ensemble_core.data.images import CACHE_ENV, ImageCache, image_cache
from ensemble_core.data.layout import load_dataset
from helpers_data import copy_demo

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import sys, numpy as np
from ensemble_core.data.images import image_cache
paths = sys.argv[1:]
cache = image_cache(paths, load_size=(32, 24))
print(cache.mode, cache.memmap_path, int(np.asarray(cache.array, dtype=np.int64).sum()))
"""


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("images-*.u8"))


def test_two_processes_share_one_decoded_file(demo_dir, tmp_path):
    paths = load_dataset(demo_dir).train["path"].tolist()[:40]
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", PROBE, *paths], env=env, capture_output=True, text=True,
                           check=True, cwd=REPO).stdout.split()
    [made] = cache_files(tmp_path / "cache")
    stamp = made.stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", PROBE, *paths], env=env, capture_output=True, text=True,
                            check=True, cwd=REPO).stdout.split()
    assert first[0] == second[0] == "memmap" and first[1] == second[1] == str(made)
    assert first[2] == second[2]                                   # the same pixels
    assert made.stat().st_mtime_ns == stamp                        # mapped, not decoded again
    assert made.stat().st_size == 40 * 32 * 24 * 3                 # one contiguous uint8 array


def test_without_the_variable_each_process_decodes_into_memory(demo_dir, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    paths = load_dataset(demo_dir).train["path"].tolist()[:5]
    assert image_cache(paths, load_size=(32, 24)).mode == "memory"


def test_a_changed_file_gives_a_new_cache(demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path)
    paths = load_dataset(data).train["path"].tolist()[:10]
    a = ImageCache(paths, load_size=(32, 24), mode="memmap", cache_dir=tmp_path / "cache")
    before = np.array(a[0])
    img = np.zeros((32, 24, 3), np.uint8)
    import cv2
    ok, buf = cv2.imencode(Path(paths[0]).suffix if Path(paths[0]).suffix.lower() != ".jpeg" else ".jpg", img)
    Path(paths[0]).write_bytes(buf.tobytes())
    os.utime(paths[0], ns=(1, 1))                                  # another modification time for sure
    b = ImageCache(paths, load_size=(32, 24), mode="memmap", cache_dir=tmp_path / "cache")
    assert b.memmap_path != a.memmap_path and len(cache_files(tmp_path / "cache")) == 2
    assert np.abs(np.asarray(b[0], dtype=int)).max() < 10 and not np.array_equal(before, np.asarray(b[0]))
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))


def test_a_truncated_cache_is_never_mapped(demo_dir, tmp_path):
    paths = load_dataset(demo_dir).train["path"].tolist()[:10]
    a = ImageCache(paths, load_size=(32, 24), mode="memmap", cache_dir=tmp_path / "cache")
    expected = np.array(a.array)
    path = a.memmap_path
    del a
    with open(path, "r+b") as fh:                                  # cut short, as a full disk would
        fh.truncate(1000)
    b = ImageCache(paths, load_size=(32, 24), mode="memmap", cache_dir=tmp_path / "cache")
    assert path.stat().st_size == expected.nbytes
    np.testing.assert_array_equal(np.asarray(b.array), expected)
