#!/usr/bin/env bash
# shapes at image quality, prepared for about 10 minutes of one GPU: bash assets/checkpoints/train_shapes_gpu.sh [OUT]
# NOT RUN YET: no GPU was at hand when it was written. It trains into OUT (default runs/shapes-gpu),
# saving every 500 steps with the training state (so a cut-off run loses at most 500 steps), and
# resumes from OUT when OUT already holds a checkpoint: run it again after a cut-off.
# Then measure it against the shipped one before replacing it (every figure must be better):
#   python benchmarks/checkpoint_figures.py  (after copying OUT's model + config into a checkpoint folder)
# Changes from the shipped run (7000 steps, 430 s on an H100): more steps at the same batch, and
# min-SNR-5 loss weighting, which puts more weight on the low-noise steps that draw the flat grounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
OUT=${1:-runs/shapes-gpu}
STEPS=${STEPS:-9000}   # ~15 steps/s at batch 512 on an H100 (shipped run's log): about 600 s
if [ -f "$OUT/config.json" ]; then
  echo "== resuming $OUT"
  $PY -m core.train --resume "$OUT" --steps "$STEPS" --device cuda --threads 1 --checkpoint-every 500 --keep-checkpoints 3
else
  $PY -m core.train --dataset shapes --preset unet-shapes --steps "$STEPS" --batch-size 512 --lr 2e-3 \
    --min-snr-gamma 5 --seed 0 --device cuda --threads 1 --checkpoint-every 500 --keep-checkpoints 3 \
    --log-every 50 --out "$OUT"
fi
$PY -m core.evaluate --checkpoint "$OUT" --n 1000 --sampler ddim --steps 50 --device cuda
