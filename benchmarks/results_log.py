"""Append a measured table to benchmarks/RESULTS.md with the date, hardware and exact command.

Every benchmark script calls :func:`append_results`; nothing is written by hand.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    desc = f"{cpu}, {cores} cores"
    try:
        import torch
        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
        else:
            desc += ", no GPU"
        desc += f", torch {torch.__version__}"
    except ImportError:
        pass
    return desc


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["python", *sys.argv])


def append_results(title: str, lines: list[str], notes: str = "", path: Path | None = None) -> str:
    """Append one section; returns the text written. ``lines`` is the printed table (markdown)."""
    path = path or Path(os.environ.get("ENSEMBLE_CORE_RESULTS", RESULTS))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"\n## {title}\n\n- date: {stamp}\n- hardware: {hardware()}\n- command: `{command_line()}`\n"
            + (f"- notes: {notes}\n" if notes else "") + "\n" + "\n".join(lines) + "\n")
    if not path.exists():
        path.write_text("# Benchmark results\n\nEvery section below was appended by the script named in its "
                        "command line; figures are as measured, never edited.\n")
    with path.open("a") as fh:
        fh.write(text)
    return text
