"""Measure the drift reference (`drift_reference.json`) of a published model on the validation split.

Publishing writes it; `python -m pneumoscan.training.drift_reference` writes it for an already
published model without retraining: the validation split is rebuilt from the training folder
with the card's split seed and fraction, and each X-ray goes through the served path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pneumoscan.batch import estimate_files
from pneumoscan.dataset import LabelledImage, list_labelled_images, split_by_patient, training_folder
from pneumoscan.drift import READINGS, reference_from_readings, write_reference
from pneumoscan.inference import DEFAULT_MODEL_DIR, Predictor


def measure_reference(predictor: Predictor, val: list[LabelledImage], seed: int) -> dict:
    """The gate readings of the validation X-rays, as uploads get them, made into the reference."""
    rows = []
    for result in estimate_files(predictor, [item.path for item in val], check_xray=False):
        if result.estimate is None:
            raise ValueError(f"{result.path} could not be scored: {result.error}")
        reading = result.estimate.gate_reading.as_dict()
        rows.append([reading[name] for name in READINGS])
    source = f"validation split of the training folder: {len(val)} X-rays"
    return reference_from_readings(np.array(rows), source, predictor.model_version, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=training_folder(), help="the training folder")
    args = parser.parse_args(argv)
    predictor = Predictor.load(args.model_dir)
    split = predictor.card.extra["split"]
    _, val = split_by_patient(list_labelled_images(args.data), split["val_fraction"], split["seed"])
    if len(val) != split["val"]["images"]:
        raise SystemExit(f"the rebuilt validation split has {len(val)} images, the card says {split['val']}")
    path = write_reference(args.model_dir, measure_reference(predictor, val, split["seed"]))
    print(f"{len(val)} validation X-rays measured; wrote {path}")


if __name__ == "__main__":
    main()
