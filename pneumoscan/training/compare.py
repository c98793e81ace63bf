"""`python -m pneumoscan.training.compare A B [C ...]`: each experiment's external AUC against the
first's, by a paired bootstrap on the external set's cases.

One external AUC on 305 images has a standard error near 0.008, larger than most differences
between designs; resampling the same cases for both designs cancels the set's shared luck, so
the difference's interval is what tells whether a design is better; compare at least two seeds
of each design, since the seed alone moves external AUC by about 0.004-0.012. Reads
`build/experiments/NAME/logits.npz` as `python -m pneumoscan.training.experiment NAME` wrote it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pneumoscan.metrics import paired_auc_difference, roc_auc
from pneumoscan.training.config import EXPERIMENTS


def external_logits(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(EXPERIMENTS / name / "logits.npz") as saved:
        return saved["external_labels"], saved["external_logits"]


def compare(names: list[str], rounds: int = 2000) -> dict:
    """The first experiment's external AUC, and each other's with its paired difference to it."""
    labels, reference = external_logits(names[0])
    report = {names[0]: {"auc": roc_auc(labels, reference)}}
    for name in names[1:]:
        other_labels, logits = external_logits(name)
        if not np.array_equal(other_labels, labels):
            raise SystemExit(f"{name} was measured on other external images than {names[0]}")
        report[name] = {
            "auc": roc_auc(labels, logits),
            f"minus_{names[0]}": paired_auc_difference(labels, reference, logits, rounds),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="experiment names (build/experiments/NAME/)")
    parser.add_argument("--rounds", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    if len(args.names) < 2:
        parser.error("name at least two experiments")
    print(json.dumps(compare(args.names, args.rounds), indent=1))


if __name__ == "__main__":
    main()
