"""What a long command shows while it works: progress bars on a terminal, plain lines elsewhere.

A terminal (stderr is a TTY) or a Jupyter kernel gets tqdm bars, redrawn in place. A log file, a cluster
job's output, CI or a pipe gets no bars (each redraw would be another ``\\r`` line: ~50 KB a minute for a
default best.py run): the one line per epoch (training) or per member (prediction) that every run prints
carries the figures. ``ENSEMBLE_CORE_PROGRESS=bars`` or ``=lines`` chooses either way.
"""
from __future__ import annotations

import os
import sys
from typing import Any, TextIO

PROGRESS_ENV = "ENSEMBLE_CORE_PROGRESS"


def bars_wanted(stream: TextIO | None = None) -> bool:
    """Whether progress bars are drawn: ``$ENSEMBLE_CORE_PROGRESS`` (``bars`` / ``lines``) when set, else when
    ``stream`` (default stderr, where tqdm draws) is a terminal or this process is a Jupyter kernel."""
    choice = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if choice in ("bars", "lines"):
        return choice == "bars"
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):   # replaced or closed stream
        tty = False
    return tty or "ipykernel" in sys.modules


def progress_bar(total: int, desc: str, quiet: bool = False) -> Any:
    """A tqdm bar of ``total`` steps, or None (quiet, or no bars wanted: :func:`bars_wanted`)."""
    if quiet or not bars_wanted():
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def echo(message: str) -> None:
    """One line of progress on stdout, printed above any bar that is being drawn."""
    from tqdm.auto import tqdm
    tqdm.write(message)
    sys.stdout.flush()
