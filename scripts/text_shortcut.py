"""`python -m scripts.text_shortcut [--model-dir DIR]`: does burned-in text move the served estimate?

Stamps a clock time top right and a kV code bottom right (as one scanner series of the external
set prints them) on every external image, scores each image plain and stamped through the served
`Predictor`, and prints the logit shift per class and the external AUC with the normals stamped.
A network that reads text as a finding shifts normals up and loses AUC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from pneumoscan.dataset import external_folder, list_labelled_images
from pneumoscan.decode import decode_image
from pneumoscan.inference import DEFAULT_MODEL_DIR, Predictor
from pneumoscan.metrics import roc_auc
from pneumoscan.png import encode_png
from pneumoscan.preprocess import CANONICAL_SIZE, resize_to_input


def stamp(gray: np.ndarray) -> np.ndarray:
    """The marks of the external set's NORMAL2-IM-02xx series, at the canonical 224x224."""
    marked = gray.copy()
    font, size = cv2.FONT_HERSHEY_SIMPLEX, CANONICAL_SIZE
    cv2.putText(marked, "15:26:54", (size - 52, 11), font, 0.33, 230, 1, cv2.LINE_AA)
    cv2.putText(marked, "KV59", (size - 30, size - 5), font, 0.33, 230, 1, cv2.LINE_AA)
    return marked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    predictor = Predictor.load(args.model_dir)
    items = list_labelled_images(external_folder())
    labels = np.array([item.label for item in items])
    plain, stamped = np.empty(len(items)), np.empty(len(items))
    for index, item in enumerate(items):
        gray = resize_to_input(decode_image(item.path.read_bytes()).gray)
        for scores, pixels in ((plain, gray), (stamped, stamp(gray))):
            scores[index] = predictor.predict(decode_image(encode_png(pixels)), check_xray=False).logit
    shift = stamped - plain
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        print(f"{name}: stamped minus plain logit, median {np.median(shift[labels == label]):+.2f}")
    with_normals_stamped = roc_auc(labels, np.where(labels == 0, stamped, plain))
    print(f"external AUC {roc_auc(labels, plain):.4f}, normals stamped {with_normals_stamped:.4f}")


if __name__ == "__main__":
    main()
