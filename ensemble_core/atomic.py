"""The one way ensemble_core writes a file: a reader never sees half of one.

Every writer goes through :func:`atomic_write`: a temp file with a unique name
in the destination folder (``.<name>.<random>.tmp``), created with mode
``0o666`` so the user's umask decides its permissions exactly as for any
other file they create (``mkstemp`` would give ``0600``), written, flushed
and fsynced, then moved onto the destination with ``os.replace`` and the
folder fsynced. If anything fails the temp file is removed and the
destination is untouched; temp files left by a killed process are removed by
:func:`remove_stale_temp_files` when a run starts.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import IO, Any, Callable

TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """A name :func:`temp_name` makes: ``.<name>.<12 hex digits>.tmp``."""
    import re
    return re.fullmatch(r"\..+\.[0-9a-f]{12}" + re.escape(TMP_SUFFIX), name) is not None


def _create_temp(path: Path) -> Path:
    for _ in range(100):
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a unique temp file next to {path}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` (it writes the whole file at ``tmp_path``), then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = _create_temp(path)
    except OSError as exc:
        raise named(exc, path) from exc
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise named(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming the file being written (``path``, not its temp name): a full disk surfaces in a writer's
    ``write`` / ``flush`` / ``fsync`` as an error without a file name (``No space left on device``), and the
    command's one line must say which file, in which folder."""
    if exc.errno is None or exc.filename == str(path):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_stream(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Like :func:`atomic_write`, with ``write(binary_file_object)``: ``torch.save(state, fh)``, ``np.savez(fh, ...)``."""
    def to_path(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
    return atomic_write(path, to_path)


def atomic_write_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """``np.savez`` of ``arrays`` (numeric and plain string arrays: every reader loads them with
    ``allow_pickle=False``)."""
    import numpy as np
    return atomic_write_stream(path, lambda fh: np.savez(fh, **arrays))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write_stream(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    """numpy scalars and arrays, paths: what the project's JSON files hold besides plain data."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


# temp names of releases before this module: checkpoints and recipe.json were written to <name>.tmp
LEGACY_TEMP_NAMES = frozenset({"last.pt.tmp", "best.pt.tmp", "recipe.json.tmp"})


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks: what a weights record and an export's manifest
    name a file by."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_stale_temp_files(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete temp files left by a killed write (``.<name>.<12 hex>.tmp``, and the older fixed names);
    they are never read. Any other file, a user's ``notes.tmp`` included, is left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(f"*{TMP_SUFFIX}") if recursive else folder.glob(f"*{TMP_SUFFIX}")
    removed = []
    for tmp in found:
        if tmp.is_file() and (is_temp_name(tmp.name) or tmp.name in LEGACY_TEMP_NAMES):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
