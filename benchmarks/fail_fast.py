"""How fast the things that should be fast are: a rerun of a finished run (every member skipped, no data
check) and a pretrained download with no network (fails after the network probe, cache only). Measured
here, not asserted in tests: wall time on shared cores says little about the code (the tests check the
behaviour that makes them fast: nothing retrained or re-checked; one probe bounded by PROBE_TIMEOUT_S,
then timm in offline mode).

    python benchmarks/fail_fast.py [--append]
    python benchmarks/fail_fast.py --tiny      # seconds: test_resnet at 32x24, 1 member x 1 epoch
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def offline_pretrained_seconds() -> tuple[float, str]:
    """Seconds until a pretrained download with an unreachable weights host fails (empty cache)."""
    import ensemble_core_plugins.weights as weights
    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.manager import get_registry

    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="hf-empty-")
    weights.PROBE_HOST = ("192.0.2.1", 443)   # TEST-NET-1: never answers, like a machine with no network
    start = time.perf_counter()
    try:
        get_registry().build("backbone", "resnet18", 3, pretrained=True)
        outcome = "built (weights were reachable)"
    except EnsembleCoreError:
        outcome = "one-line error naming pretrained_path"
    return time.perf_counter() - start, outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="test_resnet at 32x24, 1 member x 1 epoch (seconds)")
    ap.add_argument("--data", default=None, help="data folder, used as it is; default: fresh demo data")
    ap.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()

    import ensemble_core_plugins.weights as weights
    from bench_setup import demo_data, given_data, load_recipe_module
    from ensemble_core.pipeline import run_recipe
    from results_log import append_results

    work = Path(tempfile.mkdtemp(prefix="fail-fast-"))
    data = given_data(args.data) if args.data else demo_data(work / "demo")
    single18 = load_recipe_module("recipes/single18.py")
    tiny = {"tasks.0.backbone.name": "test_resnet", "defaults.load_size": [32, 24], "defaults.preprocess": [],
            "defaults.image_size": [32, 24]} if args.tiny else {}
    recipe = single18.recipe("small", **{"split.params.n_splits": 1, "defaults.epochs": 1, **tiny})
    out = work / "run"
    start = time.perf_counter()
    first = run_recipe(recipe, data_dir=data, out_dir=out, quiet=True, executor="local")
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = run_recipe(recipe, out_dir=out, quiet=True)
    rerun_s = time.perf_counter() - start
    offline_s, outcome = offline_pretrained_seconds()

    lines = ["| what | wall s | notes |", "|---|---:|---|",
             f"| first run (train + ensemble) | {first_s:.1f} | {first.trained} member(s) trained |",
             f"| rerun of the finished run | {rerun_s:.1f} | {again.trained} trained, {again.skipped} skipped, "
             f"no data check |",
             f"| pretrained resnet18, no network | {offline_s:.1f} | {outcome}; probe timeout "
             f"{weights.PROBE_TIMEOUT_S} s |"]
    print("\n".join(lines))
    if args.append:
        model = "test_resnet 32x24 (--tiny)" if args.tiny else "resnet10t 64x48 (preset small)"
        append_results("fail fast: rerun of a finished run, pretrained weights without network", lines,
                       f"recipes/single18.py, 1 member x 1 epoch, {model}, demo data ({data}); "
                       f"{os.cpu_count()} cores shared with other jobs (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
