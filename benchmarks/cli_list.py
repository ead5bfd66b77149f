"""Wall time of `python -m ensemble_core list` (target: under 1 s) and proof that it imports no torch.

    python benchmarks/cli_list.py [--repeats 5] [--no-record]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from results_log import append_results

PROBE = ("import sys; from ensemble_core.cli import main; import io, contextlib; "
         "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf): rc = main(['list'])\n"
         "print(rc, len(buf.getvalue().splitlines()), 'torch' in sys.modules)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ensemble_core", "list"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    rc, n_lines, torch_loaded = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True,
                                               text=True).stdout.split()
    lines = ["| measure | value |", "|---|---|",
             f"| wall time, median of {args.repeats} (s) | {statistics.median(times):.3f} |",
             f"| wall time, max (s) | {max(times):.3f} |",
             f"| lines listed | {n_lines} |",
             f"| torch imported | {torch_loaded} |",
             "| target | under 1 s, no torch |"]
    print("\n".join(lines))
    if not args.no_record:
        append_results("`python -m ensemble_core list`: wall time", lines)


if __name__ == "__main__":
    main()
