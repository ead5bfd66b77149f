"""Our best guess at beating the maskproxy reference from scratch, sized for one GPU session.

    fire recipes/best.py run --data_dir /tmp/maskproxy --preset seed     # GPU: ~10 min of H200 (see below)
    fire recipes/best.py run --data_dir /tmp/maskproxy --preset small    # CPU-sized
    python benchmarks/quality.py --recipe recipes/best.py --data /tmp/maskproxy   # + eval F1 and RESULTS.md

The reference it is meant to beat (docs: /work/shared/datasets/maskproxy/README.md): efficientnet_b0
from scratch, one 18-class model per 8:2 person split, 24 epochs, 3 splits soft-voted: eval macro F1
0.542 (age accuracy 0.717). What this recipe changes, all aimed at the age task and the rare 60+ classes:

- per-gender 60+ thresholds (men 58, women 57, as the seed) so the rare class is predicted more often;
- class-conditional CutMix that always pastes in a 60+ face (the winning solution's trick);
- 0.7 cross-entropy + 0.3 soft-F1 loss (a macro-F1 surrogate; cross-entropy leads from scratch);
- EMA of the weights (the better of model / EMA is kept per epoch, on validation F1);
- geometric + colour augmentation and hflip TTA; images upsampled 200 -> 224 on the GPU preset.

Decision: ``prior_power`` (subtract alpha x log of the training class prior; one parameter, fitted on the
out-of-fold predictions, see docs/ENSEMBLE.md "Decision rules"). Chosen on out-of-fold figures only: on
maskproxy with the CPU preset (benchmarks/RESULTS.md, 2026-11-29) its cross-fitted OOF macro F1 was 0.5261
against arg-max's 0.5109 on the same 9422 images (ahead in 98% of person-bootstrap replicates), the best of
the built-in rules (factor_offsets 0.5215, class_offsets 0.5179, which the pipeline would not apply: 78%
support); fitted alpha 0.2. The rare 60+ classes are under-predicted by arg-max and macro F1 punishes
exactly that. The pipeline re-checks it on every run and keeps arg-max when its cross-fitted estimate is
not better. (Eval macro F1, reported only: 0.6042 vs arg-max 0.5836.)

The vote stays ``soft``: all members share one backbone, so a per-backbone ``weighted_soft`` has one
weight to fit. Add a second family with ``--tasks.0.backbones='[efficientnet_b0, resnet26d]'
--voter.name=weighted_soft`` when the budget allows. Settings were chosen from the seed's and the
field's experience, not on eval answers; only out-of-fold figures may be used to tune them.

Presets: ``seed`` (and ``auto`` on a GPU) -> the GPU sizing below, from scratch (the device machine
has no network for pretrained weights); ``small`` (``auto`` on a CPU) -> same structure, a small
backbone on 48x48 images.
"""
from __future__ import annotations

from ensemble_core.launch import recipe_commands
from ensemble_core.presets import AGE_60_PLUS_CLASSES, SEED_AGE_THRESHOLDS, Preset, recipe_header

NAME = "best"
CE_THEN_F1 = {"name": "weighted_sum", "params": {"terms": [{"name": "cross_entropy", "weight": 0.7},
                                                           {"name": "soft_f1", "weight": 0.3}]}}
AUGMENTATIONS = [
    "HorizontalFlip",
    {"name": "ShiftScaleRotate", "params": {"shift_limit": 0.06, "scale_limit": 0.1, "rotate_limit": 10}},
    "RandomBrightnessContrast",
    "HueSaturationValue",
]

# (GPU, CPU) sizes; the GPU one is meant to fit ~10 minutes of H200 time with the data build
SIZING = {
    True: {"backbone": "efficientnet_b0", "image_size": [224, 224], "load_size": None, "epochs": 24,
           "batch_size": 128, "lr": 3e-3, "ema_decay": 0.999, "num_workers": 12},
    False: {"backbone": "resnet10t", "image_size": [48, 48], "load_size": [48, 48], "epochs": 4,
            "batch_size": 64, "lr": 3e-3, "ema_decay": 0.99, "num_workers": 0},
}


def build(p: Preset) -> dict:
    s = SIZING[p.sized_for_gpu]
    return {
        **recipe_header(NAME),
        "decision": {"name": "prior_power"},
        "defaults": {
            "image_size": s["image_size"], "load_size": s["load_size"], "epochs": s["epochs"],
            "batch_size": s["batch_size"], "num_workers": s["num_workers"], "tta": ["hflip"],
            "augmentations": AUGMENTATIONS,
            "label_transform": SEED_AGE_THRESHOLDS,
            "batch_augmentation": {"name": "class_cutmix",
                                   "params": {"target_class": AGE_60_PLUS_CLASSES, "prob": 0.5}},
            "loss": CE_THEN_F1,
            "optimizer": {"name": "adamw", "params": {"lr": s["lr"], "weight_decay": 0.05}},
            "scheduler": {"name": "cosine", "params": {"warmup_epochs": 1.0}},
            "ema_decay": s["ema_decay"],
        },
        "tasks": [{"task": "all18",
                   "backbone": {"name": s["backbone"], "params": {"pretrained": False, "drop_rate": 0.2}}}],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) every split's member, vote, write runs/best/submission.csv and report.md.")
