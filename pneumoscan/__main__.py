"""Command line: `python -m pneumoscan predict PATH... [--csv FILE]` and
`python -m pneumoscan evaluate DIR [--json FILE]`, with the committed model and its threshold."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pneumoscan.dataset import CLASS_NAMES, IMAGE_SUFFIXES, list_labelled_images
from pneumoscan.inference import Predictor
from pneumoscan.metrics import classification_report
from pneumoscan.scoring import score_files

CSV_COLUMNS = ("path", "probability", "label", "threshold", "model_version", "error")


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively for image files, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total or done % 50 == 0:
        end = "" if sys.stderr.isatty() and done < total else "\n"
        print(f"\r{done}/{total} images", end=end, file=sys.stderr, flush=True)


def predict(args: argparse.Namespace) -> int:
    predictor = Predictor.load(args.model_dir)
    files = list(expand(args.paths))
    out = open(args.csv, "w", newline="", encoding="utf-8") if args.csv else sys.stdout
    failures = 0
    try:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for done, scored in enumerate(score_files(predictor, files, check_xray=not args.no_gate), start=1):
            p = scored.prediction
            if p is None:
                failures += 1
                writer.writerow([scored.path, "", "ERROR", predictor.threshold, predictor.model_version, scored.error])
            else:
                writer.writerow([scored.path, f"{p.probability:.6f}", p.label, f"{p.threshold:.6f}", p.model_version, ""])
            progress(done, len(files))
    finally:
        if args.csv:
            out.close()
    if failures:
        print(f"{failures} of {len(files)} files could not be scored (see the error column)", file=sys.stderr)
    return 0 if files and failures < len(files) else 1


def evaluate(args: argparse.Namespace) -> int:
    predictor = Predictor.load(args.model_dir)
    items = list_labelled_images(args.folder)
    labels, probabilities, errors = [], [], []
    for done, scored in enumerate(score_files(predictor, [i.path for i in items], check_xray=False), start=1):
        if scored.prediction is None:
            errors.append(f"{scored.path}: {scored.error}")
        else:
            labels.append(items[done - 1].label)
            probabilities.append(scored.prediction.probability)
        progress(done, len(items))
    report = classification_report(np.array(labels), np.array(probabilities), predictor.threshold)
    report.update(model_version=predictor.model_version, folder=str(args.folder), errors=errors,
                  counts={name: int(sum(1 for l in labels if l == k)) for k, name in enumerate(CLASS_NAMES)})
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumoscan", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="folder with model_card.json (default model_weights/)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="score files and folders; CSV on stdout or --csv")
    p.add_argument("paths", type=Path, nargs="+")
    p.add_argument("--csv", type=Path, help="write the CSV here instead of stdout")
    p.add_argument("--no-gate", action="store_true", help="score even images the non-X-ray gate would refuse")
    p.set_defaults(run=predict)
    e = commands.add_parser("evaluate", help="metrics at the stored threshold on a NORMAL/ PNEUMONIA/ folder")
    e.add_argument("folder", type=Path)
    e.add_argument("--json", type=Path, help="also write the metrics here")
    e.set_defaults(run=evaluate)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
