#!/usr/bin/env bash
# Rebuild the shipped checkpoints, one after another: bash assets/checkpoints/make_checkpoints.sh [DEVICE] [NAME...]
# DEVICE defaults to cpu; NAMEs default to all of them. Where each shipped checkpoint was actually trained is
# recorded in its own config.json meta ("device"; checkpoints saved before that field existed record only their
# torch build) and printed from there in README.md's table: this script does not claim it.
# EXTRA adds core.train flags to every run (e.g. EXTRA="--checkpoint-every 1000").
# Each run writes assets/checkpoints/<name>/ (model.safetensors + config.json + log.jsonl), then
# explorer.record_defaults records its Reverse-tab default run beside it (trajectory.npz).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=${1:-cpu}; shift || true
PY=${PYTHON:-python}
OUT=assets/checkpoints
COMMON="--no-train-state --log-every 50 --seed 0 --device $DEV --threads ${THREADS:-1} ${EXTRA:-}"

run() {  # name, then core.train arguments
  local name=$1; shift
  echo "== $name: python -m core.train $* --out $OUT/$name"
  local start=$SECONDS
  $PY -m core.train "$@" --out "$OUT/$name" $COMMON
  echo "$name: $((SECONDS - start)) s wall"
}

declare -A CMD=(
  [swiss_roll]="--dataset swiss_roll --preset mlp-2d --model-param fourier_scale=3.0 --steps 20000 --batch-size 256 --lr 2e-3"
  [moons]="--dataset moons --preset mlp-2d --model-param fourier_scale=3.0 --steps 20000 --batch-size 256 --lr 2e-3"
  [gaussians8]="--dataset gaussians8 --preset mlp-2d --steps 6000 --batch-size 256 --lr 2e-3"
  [checkerboard]="--dataset checkerboard --preset mlp-2d --model-param fourier_scale=3.0 --schedule cosine --steps 20000 --batch-size 4096 --lr 2e-3"
  [rings]="--dataset rings --preset mlp-2d --model-param fourier_scale=3.0 --schedule logsnr --steps 20000 --batch-size 1024 --lr 2e-3"
  [spiral]="--dataset spiral --preset mlp-2d --schedule cosine --steps 20000 --batch-size 1024 --lr 2e-3"
  [signals_conv1d]="--dataset signals --preset conv1d-signals --steps 3000 --batch-size 128 --lr 1e-3"
  [signals_gru]="--dataset signals --preset gru-signals --steps 4000 --batch-size 128 --lr 2e-3"
  [digits]="--dataset digits --preset unet-digits --steps 3000 --batch-size 128 --lr 1e-3"
  [shapes]="--dataset shapes --preset unet-shapes --steps 7000 --batch-size 512 --lr 2e-3"
)
ORDER=(swiss_roll moons gaussians8 checkerboard rings spiral signals_conv1d signals_gru digits shapes)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${ORDER[@]}")
for n in "${names[@]}"; do
  [ -n "${CMD[$n]:-}" ] || { echo "unknown checkpoint $n; known: ${ORDER[*]}" >&2; exit 2; }
  run "$n" ${CMD[$n]}
  $PY -m explorer.record_defaults "$n" --threads "${THREADS:-1}"
done
