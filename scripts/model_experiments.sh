#!/usr/bin/env bash
# The model variants of the README's table that the current code builds, one after another (11 to
# 45 min each on 2 cores, by host). Each run appends its figures to build/experiments.jsonl; the checkpoints
# stay in build/experiments/NAME/ (`python -m pneumoscan.training.publish --build-dir ...` publishes
# one; `python -m pneumoscan.training.compare A B` compares two by a paired bootstrap). The
# table's earlier rows (4x4 exit flow, label smoothing, the two-network pair) came from the code
# before the output-stride-16 design; git history has it.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { .venv/bin/python -m pneumoscan.training.experiment "$@"; }
per_epoch() { run "$@" --average-every 0; }     # the rows before dense averaging: weights averaged after each epoch
run15() { per_epoch "$@" --val-fraction 0.15; }  # the 15%-validation design of the earlier rows
run15 os16_two_task                                      # the previous committed model
run15 os16_two_task_s7 --seed 7                          # its second seed
run15 os16_soup2 --soup 2 --epochs 3                     # two fine-tunings from one linear probe, averaged
run15 os16_soup3 --soup 3 --epochs 3                     # the same with a third member
run15 os16_soup2_s7 --soup 2 --epochs 3 --seed 7         # the soup's second seed
run15 os16_no_subtype_loss --subtype-weight 0            # does the shared training change the main AUC?
run15 os16_smoothing --label-smoothing 0.1               # smoothing back on, same design
run15 os16_112px --input-size 112                        # a quarter less compute: does ranking hold?
run15 os16_clahe2 --clahe-clip 2.0                       # CLAHE before the 128 px resize
run15 os16_text --burned-in-text 0.5                     # burned-in text on both classes' views (a shortcut)
run15 os16_corners --corner-mask 0.14                    # the four corners blanked, train and serve (the print is gone)
run15 os16_views12 --views 12                            # twice the cached augmented views (more diversity, same steps)
run15 os16_lr5e5 --learning-rate 5e-5                    # fine-tune more gently (nearer the pretrained features)
run15 os16_block4 --cache-layer add_1                    # block 4 fine-tuned too (less of the trunk frozen)
per_epoch os16_val05                                     # a third of the validation split's patients back into training: the previous committed design
per_epoch os16_val05_s7 --seed 7                         # its second seed
per_epoch os16_val05_s0 --seed 0                         # its third seed
per_epoch os16_val05_e3 --epochs 3                       # the same in 3 epochs, to fit make train into the hour on a slower host
per_epoch os16_val05_e8 --epochs 8 --average-from 3      # longer fine-tuning, SWA of epochs 3-8
per_epoch os16_val05_e4 --epochs 4                       # one epoch less
per_epoch os16_val05_views12 --views 12                  # twice the cached views, on the committed design
per_epoch os16_val02 --val-fraction 0.02                 # still more patients for fitting
per_epoch os16_val05_photo2 --photometric 2              # twice the gamma/contrast/brightness range (the high-scoring external normals are flatter)
per_epoch os16_val05_mixup04 --mixup 0.4                 # manifold mixup of the cached feature maps, Beta(0.4, 0.4)
per_epoch os16_val05_no_subtype_loss --subtype-weight 0  # the viral logit fitted on frozen features only: does the shared fine-tuning cost the main task?
per_epoch os16_val05_frozen8 --cache-layer add_6         # blocks 1-8 frozen, 9-14 fine-tuned (nearer the pretrained features)
per_epoch os16_val05_lr5e5 --learning-rate 5e-5          # fine-tune more gently, on the committed design
per_epoch os16_val05_144px --input-size 144              # 27% more pixels (the faster served graph could just afford them)
per_epoch os16_val05_batch16 --batch-size 16             # twice the steps and more gradient noise for the weight average
per_epoch os16_val05_rank1 --ranking-weight 1.0          # a pairwise ranking loss beside the cross-entropy (a smooth 1 - AUC)
run os16_val05_dense_swa                                 # weights averaged every 10 batches from epoch 2, as SWAD: the committed design (train.py's defaults)
run os16_val05_dense_swa_s7 --seed 7                     # its second seed
run os16_val05_dense_swa_s0 --seed 0                     # its third seed
run os16_val05_dense_from1 --average-from 1              # the dense average from the start of epoch 1
run os16_val05_dense_from3 --average-from 3              # ... and from the start of epoch 3
run os16_val05_dense_lr2e4 --learning-rate 2e-4          # twice the learning rate under the dense average
run os16_val05_dense_sam05 --sam-rho 0.05                # sharpness-aware minimisation (a second pass per batch)
run os16_val05_dense_bn --batch-norm trained              # BatchNormalization trained while fine-tuning (frozen in every other row)
run os16_val05_dense_corrupt09 --corruption 0.9           # more of the augmented views corrupted (0.7 in every other row)
run os16_val05_dense_corrupt04 --corruption 0.4           # ... and fewer
run os16_val05_dense_e6 --epochs 6                         # a sixth epoch under the dense average
run os16_val05_dense_medmnistc --corruption-families medmnist-c  # MedMNIST-C's speckle, impulse and shot noise, pixelation, contrast and brightness in the draw too
run os16_val05_dense_geo15 --geometric 1.5                 # rotation, zoom and shift ranges half as wide again (framing was the weakest family)
run os16_val05_dense_geo15_s7 --geometric 1.5 --seed 7     # its second seed
run os16_val05_dense_block4 --cache-layer add_1              # block 4 fine-tuned too, on the committed design
