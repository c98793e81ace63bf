#!/usr/bin/env bash
# The model variants compared in the README's table, one after another (about 45 min each on
# 2 cores). Each run appends its figures to build/experiments.jsonl; the checkpoints and logits
# stay in build/experiments/NAME/. Names ending in _s7 repeat a variant with seed 7.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { .venv/bin/python -m pneumoscan.training.experiment "$@"; }
run e01_default                                   # 128 px, no CLAHE, corruptions 0.7, blocks 5-14, smoothing 0.1
run e02_clahe2 --clahe-clip 2.0                   # the CLAHE of the first model
run e03_default_s7 --seed 7
run e04_no_corruption --corruption 0
run e05_blocks9 --cache-layer add_6               # fine-tune blocks 9-14 only
run e06_clahe2_s7 --clahe-clip 2.0 --seed 7
run e07_no_smoothing --label-smoothing 0
.venv/bin/python -m pneumoscan.training.ensemble e01_default e03_default_s7   # the committed pair
