"""`python -m pneumoscan.training.robustness [--on DIR]`: the served model on a labelled folder
as stored and under each way telemedicine images get damaged.

Each image goes through the whole served path: its file is decoded as the app decodes it, the
corruption is applied to the 224x224 grayscale pixels, the result is encoded as PNG (lossless, so
only the corruption's own damage counts), and `Predictor.predict` decodes and scores those bytes
with the non-X-ray gate on. Per family: AUC, sensitivity and specificity at the stored threshold,
and the X-rays the gate refused that it accepts as stored (there should be none).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumoscan.dataset import external_folder, list_labelled_images
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Predictor
from pneumoscan.metrics import classification_report
from pneumoscan.png import encode_png
from pneumoscan.preprocess import resize_to_input
from pneumoscan.training.config import repo_relative
from pneumoscan.training.corruptions import FAMILIES, downscale, jpeg

REPORT: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "as stored": lambda gray, rng: gray,
    "jpeg quality 40": lambda gray, rng: jpeg(gray, 40),
    "downscaled to 112 px and back": lambda gray, rng: downscale(gray, 112),
    **{name.replace("_", " "): corruption for name, corruption in FAMILIES.items()},
}


def score_family(
    predictor: Predictor, grays: list[np.ndarray], labels: np.ndarray, corruption: Callable, seed: int
) -> tuple[dict, list[int]]:
    """Figures at the stored threshold for one corruption, and the indices the gate refused."""
    rng = np.random.default_rng(seed)
    probabilities, refused = np.full(len(grays), np.nan), []
    for index, gray in enumerate(grays):
        data = encode_png(corruption(gray, rng))
        try:
            probabilities[index] = predictor.predict(decode_image(data)).probability
        except ImageRejected:
            refused.append(index)
            probabilities[index] = predictor.predict(decode_image(data), check_xray=False).probability
    report = classification_report(labels, probabilities, predictor.threshold)
    return {k: report[k] for k in ("auc", "sensitivity", "specificity", "accuracy", "ece")}, refused


def robustness_report(predictor: Predictor, folder: Path, seed: int = 0) -> dict:
    items = list_labelled_images(folder)
    labels = np.array([i.label for i in items])
    grays = [resize_to_input(decode_image(i.path.read_bytes()).gray) for i in items]
    report: dict = {
        "folder": repo_relative(folder),
        "images": len(items),
        "model_version": predictor.model_version,
        "threshold": predictor.threshold,
        "families": {},
    }
    refused_as_stored: set[int] = set()
    for name, corruption in REPORT.items():
        figures, refused = score_family(predictor, grays, labels, corruption, seed)
        if name == "as stored":
            refused_as_stored = set(refused)
        newly = sorted(set(refused) - refused_as_stored)
        figures.update(gate_refused=len(refused), newly_refused=[items[i].path.name for i in newly])
        report["families"][name] = figures
        print(
            f"{name:32s} AUC {figures['auc']:.4f}  sens {figures['sensitivity']:.3f}  "
            f"spec {figures['specificity']:.3f}  ECE {figures['ece']:.3f}  gate refused {len(refused)}",
            flush=True,
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--on",
        type=Path,
        default=external_folder(),
        help="labelled folder (NORMAL/, PNEUMONIA/); default: the external set",
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="model folder (default model_weights/)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random corruption severities")
    args = parser.parse_args(argv)
    report = robustness_report(Predictor.load(args.model_dir), args.on, args.seed)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
