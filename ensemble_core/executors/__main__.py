"""Train one member from a job file: ``python -m ensemble_core.executors JOB.json [--device cpu] [--quiet]``.

``JOB.json`` holds the fields of :class:`ensemble_core.executors.MemberJob`: ``member``
(``Member.to_dict()``), ``data_dir``, ``train_rows``, ``val_rows``, ``run_dir`` and optionally
``exclude`` and ``options``. Exit status 0 when the member is done (trained or skipped), 1 when it failed.
A killed run started again with the same job resumes from its last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ensemble_core.atomic import atomic_write_json


def write_job(path: str | Path, member: dict, data_dir: str, train_rows, val_rows, run_dir: str,
              exclude: Sequence[str] = (), options: dict | None = None, dataset: dict | None = None) -> Path:
    """Write a job file for this command (used by tests and process-based executors); ``dataset``: the data
    layout ``{name, params}`` (left out for the mask competition's)."""
    path = Path(path)
    data = {"member": member, "data_dir": str(data_dir),
            "train_rows": [int(i) for i in train_rows], "val_rows": [int(i) for i in val_rows],
            "run_dir": str(run_dir), "exclude": list(exclude), "options": options or {}}
    if dataset is not None:
        data["dataset"] = dataset
    atomic_write_json(path, data)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble_core.executors", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="JSON job file (MemberJob fields)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    args = parser.parse_args(argv)

    import numpy as np

    from ensemble_core.executors.job import MemberJob, run_member_job

    try:
        data = json.loads(Path(args.job).read_text())
    except OSError as exc:
        from ensemble_core.errors import error_line
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: job file {args.job}: not JSON ({exc}); write it with write_job()", file=sys.stderr)
        return 1
    options = dict(data.get("options") or {})
    if args.device:
        options["device"] = args.device
    if args.quiet:
        options["quiet"] = True
    job = MemberJob(member=data["member"], data_dir=data["data_dir"],
                    train_rows=np.asarray(data["train_rows"], dtype=np.int64),
                    val_rows=np.asarray(data["val_rows"], dtype=np.int64), run_dir=data["run_dir"],
                    exclude=tuple(data.get("exclude") or ()), options=options, dataset=data.get("dataset"))
    result = run_member_job(job)
    print(f"{result.run_name}: {result.status} ({result.seconds:.1f}s)" + (f" — {result.error}" if result.error else ""),
          file=sys.stderr if result.status == "failed" else sys.stdout)
    if result.status == "failed" and result.details:
        print(result.details, file=sys.stderr)
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
