"""Our best guess at beating the maskproxy reference from scratch, sized for one GPU session.

    fire recipes/best.py run --data_dir /tmp/maskproxy --preset seed     # GPU: ~10 min of H200 (see below)
    fire recipes/best.py run --data_dir /tmp/maskproxy --preset small    # CPU-sized (2 cores: ~20-35 min)
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
has no network for pretrained weights); ``small`` (``auto`` on a CPU) -> same losses, augmentations and
decision, a small backbone on 48x48 images, sized for a 2-core CPU (issue 13, item 4).

The CPU preset (``small``), and why (benchmarks/RESULTS.md "best.py small run", 2026-11-30). Every member
trains from scratch, so what a CPU minute buys is the whole game. Settings were chosen on out-of-fold
figures only (proxy: one resnet10t member on one fixed 25% person split of maskproxy, 4725 images, the
same split for every variant); eval answers were only reported:

- ``executor: process`` with ``threads: 1`` per member: two members train side by side, one per core.
  resnet10t at 48x48 on one thread trains at ~187 images/s per process with two processes running,
  against ~227 images/s for one process on two threads (1.6x more images per second for the machine;
  speed only, the members' arithmetic is unchanged).
- ``channels_last: true``: 229 vs 186 images/s on one thread at 48x48 (speed only).
- split ``kfold`` with 4 person folds instead of 3 shuffle splits of 20%: every one of the 18,900
  training images is predicted out of fold (the old 3 x 20% splits covered 9,422), so the OOF figure
  is the steadier one, and 4 members keep two workers busy for exactly two rounds (3 would leave
  a core idle for a third of the run). Each member trains on 75% of the people (was 80%).
- 5 epochs (was 4), image size kept at 48x48: the 4-epoch members were still climbing steeply
  (validation macro F1 +0.01..+0.04 in their last epoch). At equal compute, 48x48 x 7 epochs and
  56x56 x 5 epochs tie on the proxy (OOF macro F1 0.5693 vs 0.5725, within the noise of 4725 images),
  so the cheaper size stays and the two-core time budget (~20 minutes) sets the epochs.
- Rejected on the proxy's OOF: ``eval_image_size`` 56 for a 48x48-trained member (0.4119 vs 0.5693:
  the model was not trained with zoom-out, so upsampling only shifts the input scale); ``shifts`` TTA
  (9 views: 0.5696 vs hflip's 0.5693, the same F1 for 5x the inference; on an older member 0.4986 vs
  0.5036); kept ``hflip``. ``augment_on: device`` stays off on a CPU (batched kornia is ~4x slower
  there than albumentations per image, see RESULTS.md "loader").
- Decision ``prior_power`` kept: on the new default's run the pipeline applies it (cross-fitted OOF
  0.5507 vs arg-max 0.5459 on 18,900 images, 91% support); factor_offsets (0.5538) and class_offsets
  (0.5516) lead it there by 0.003 / 0.001, but trailed it by 0.005 / 0.008 on the previous run, so the
  rules tie across runs and the one-parameter rule stays.

Measured (default ``fire recipes/best.py run --data_dir /tmp/maskproxy``, 2026-11-30): OOF macro F1
0.5459 soft + arg-max, 0.5507 with the decision, on all 18,900 training images (the previous default:
0.5109 / 0.5261 on 9,422). Eval macro F1, reported only: 0.5948 (arg-max 0.6064; previous default
0.6042), so issue 13's 0.63 is not reached. Wall time 1365 s (22.7 min) with other jobs holding the
2-core load at ~4, and 2164 s in a first run at load ~7 (same figures: the members are deterministic);
with the cores to itself a member epoch takes ~72 s, about 16 minutes for the run, but that was not
measured here. Not tried for lack of CPU time: learning rate, batch size, label smoothing, CutMix
probability, other tiny backbones, kfold 2 with longer members.
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
    False: {"backbone": "resnet10t", "image_size": [48, 48], "load_size": [48, 48], "epochs": 5,
            "batch_size": 64, "lr": 3e-3, "ema_decay": 0.99, "num_workers": 0,
            # 4 person folds: every training image is predicted out of fold once, and 4 members keep
            # two single-thread worker processes busy for two rounds (see the docstring)
            "split": {"name": "kfold", "params": {"n_splits": 4}},
            "executor": {"name": "process"}, "threads": 1, "channels_last": True},
}


def build(p: Preset) -> dict:
    s = SIZING[p.sized_for_gpu]
    header = recipe_header(NAME, split=s.get("split"))
    if "executor" in s:
        header["executor"] = s["executor"]
    cpu_only = {k: s[k] for k in ("threads", "channels_last") if k in s}
    return {
        **header,
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
            **cpu_only,
        },
        "tasks": [{"task": "all18",
                   "backbone": {"name": s["backbone"], "params": {"pretrained": False, "drop_rate": 0.2}}}],
    }


recipe, run = recipe_commands(
    NAME, build, "Train (or reuse) every split's member, vote, write runs/best/submission.csv and report.md.")
