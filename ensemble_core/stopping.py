"""Graceful stop: SIGINT / SIGTERM ask the running members to save a last checkpoint and return.

One process-wide flag (:func:`request_stop` / :func:`stop_requested`) is read by the training loop
between steps. :func:`graceful_signals` turns the first SIGINT / SIGTERM into that flag (a second
one interrupts at once). Worker processes (process pool, Ray) learn about a stop from a *stop file*
that the parent writes next to the member folders; :func:`watch_stop_file` turns it into the flag.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Iterator

from ensemble_core.errors import EnsembleCoreError


_stop = threading.Event()
_reason: list[str] = []


class MemberStopped(Exception):
    """Raised by the training loop after a requested stop, once ``checkpoints/last.pt`` is saved."""

    def __init__(self, run_dir: str | Path, where: str):
        self.run_dir, self.where = str(run_dir), where
        super().__init__(f"stopped on request {where}; resume by running again ({run_dir})")


class RunInterrupted(EnsembleCoreError):
    """The run stopped on SIGINT / SIGTERM; ``exit_status`` is 128 + the signal number."""

    def __init__(self, message: str, exit_status: int = 130):
        self.exit_status = exit_status
        super().__init__(message)


class StoppedAtOnce(KeyboardInterrupt):
    """A second SIGINT / SIGTERM: stop now, without a new checkpoint; ``exit_status`` is 128 + its number."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + int(signum)
        super().__init__(f"second {self.signal_name}: stopping without a checkpoint")


_epoch_listeners: list = []


@contextlib.contextmanager
def epoch_listener(callback) -> Iterator[None]:
    """While inside, ``callback()`` runs in this process after every epoch a member finishes (its line is in
    metrics.jsonl), before the next epoch starts: e.g. a tuner that reports the epoch and may
    :func:`request_stop`. Members in other processes are not seen (poll their files instead)."""
    _epoch_listeners.append(callback)
    try:
        yield
    finally:
        _epoch_listeners.remove(callback)


def epoch_finished() -> None:
    for callback in list(_epoch_listeners):
        callback()


def request_stop(reason: str = "stop requested") -> None:
    if not _stop.is_set():
        _reason[:] = [reason]
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def stop_reason() -> str | None:
    return _reason[0] if _stop.is_set() and _reason else None


def clear_stop() -> None:
    _stop.clear()
    _reason.clear()


def signal_exit_status(reason: str | None) -> int:
    """128 + signal number for a stop caused by a signal (shell convention), else 1."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if reason == sig.name:
            return 128 + int(sig)
    return 1


@contextlib.contextmanager
def graceful_signals() -> Iterator[None]:
    """First SIGINT/SIGTERM: :func:`request_stop`; a second one: :class:`StoppedAtOnce` (a ``KeyboardInterrupt``:
    stop now).

    Only the main thread can install handlers; elsewhere this does nothing. Previous handlers
    are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop_requested():
            raise StoppedAtOnce(signum)
        request_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------- stop files (parent -> workers)
def write_stop_file(path: Path, reason: str) -> None:
    from ensemble_core.atomic import atomic_write_text
    atomic_write_text(path, reason + "\n")


@contextlib.contextmanager
def watch_stop_file(path: str | Path | None, interval: float = 0.2) -> Iterator[None]:
    """While inside, a thread polls ``path`` and calls :func:`request_stop` when it appears.

    The flag is cleared on exit, so a reused worker process starts its next member clean.
    """
    if path is None:
        yield
        return
    path = Path(path)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(interval):
            if path.exists():
                request_stop(f"stop file {path}")
                return

    thread = threading.Thread(target=poll, name="stop-file-watcher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        clear_stop()
