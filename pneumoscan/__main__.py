"""Command line, with the committed model (or --model-dir) and its threshold (predict: the web
app's site threshold for the model version when --database-url or DATABASE_URL names its database):

python -m pneumoscan predict PATH... [--csv FILE] [--maps DIR] [--no-gate] [--database-url URL]
python -m pneumoscan evaluate DIR [--json FILE]
python -m pneumoscan threshold --policy sensitivity|youden [--min-sensitivity 0.95] [--on DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pneumoscan.batch import estimate_files
from pneumoscan.dataset import external_folder, list_labelled_images
from pneumoscan.formats import IMAGE_SUFFIXES
from pneumoscan.inference import Predictor, model_dir_in_use
from pneumoscan.metrics import classification_report
from pneumoscan.model_card import CARD_FILE, CLASS_NAMES
from pneumoscan.repick import repick
from pneumoscan.threshold import POLICIES, QUANTILE

CSV_COLUMNS = (
    "path",
    "probability",
    "logit",
    "label",
    "threshold",
    "model_version",
    "viral_probability",
    "subtype",
    "error",
)


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively for image files, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


def progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total or done % 50 == 0:
        end = "" if sys.stderr.isatty() and done < total else "\n"
        print(f"\r{done}/{total} images", end=end, file=sys.stderr, flush=True)


def threshold_in_use(predictor: Predictor, database_url: str | None) -> tuple[float, str]:
    """The site threshold set in the web app's database for this model version, else the card's;
    with where it came from. The web modules (and Flask) are imported only when a database is named."""
    if not database_url:
        return predictor.threshold, "the model card's"
    from pneumoscan.web.results.site_threshold import in_use_at

    chosen = in_use_at(database_url, predictor.card)
    if chosen.row is None:
        return chosen.value, "the model card's (no site threshold set in the database)"
    return chosen.value, f"the site threshold set {chosen.row.created_at:%Y-%m-%d %H:%M} UTC"


def map_paths(files: list[Path], folder: Path) -> dict[Path, Path]:
    """`<folder>/<image file stem>.npy` for each file; two files with one stem would overwrite
    each other's map, so they are refused before anything is scored."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise SystemExit(f"--maps: {seen[path.stem]} and {path} share the file stem {path.stem!r}")
        seen[path.stem] = path
    folder.mkdir(parents=True, exist_ok=True)
    return {path: folder / f"{path.stem}.npy" for path in files}


def optional(value: float | str | None) -> str:
    """Full precision for numbers, blank where there is no value (a NORMAL row's subtype)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def predict(args: argparse.Namespace) -> int:
    """Numbers at full precision (repr), so that ranking by probability is never lost to rounding."""
    predictor = Predictor.load(args.model_dir)
    threshold, source = threshold_in_use(predictor, args.database_url)
    print(f"threshold {threshold!r}: {source}, model {predictor.model_version}", file=sys.stderr)
    files = list(expand(args.paths))
    maps = map_paths(files, args.maps) if args.maps else {}
    out = open(args.csv, "w", newline="", encoding="utf-8") if args.csv else sys.stdout  # noqa: SIM115
    failures = 0
    try:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        results = estimate_files(predictor, files, check_xray=not args.no_gate, threshold=threshold)
        for done, result in enumerate(results, start=1):
            e = result.estimate
            if e is None:
                failures += 1
                row = [
                    result.path,
                    "",
                    "",
                    "ERROR",
                    repr(threshold),
                    predictor.model_version,
                    "",
                    "",
                    result.error,
                ]
            else:
                row = [
                    result.path,
                    repr(e.probability),
                    repr(e.logit),
                    e.label,
                    repr(e.threshold),
                    e.model_version,
                    optional(e.viral_probability),
                    optional(e.subtype),
                    "",
                ]
                if maps:
                    np.save(maps[result.path], e.cam.astype(np.float32))
            writer.writerow(row)
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
    results = estimate_files(predictor, [i.path for i in items], check_xray=False)
    for done, (item, result) in enumerate(zip(items, results, strict=True), start=1):
        if result.estimate is None:
            errors.append(f"{result.path}: {result.error}")
        else:
            labels.append(item.label)
            probabilities.append(result.estimate.probability)
        progress(done, len(items))
    report = classification_report(np.array(labels), np.array(probabilities), predictor.threshold)
    counts = {name: labels.count(index) for index, name in enumerate(CLASS_NAMES)}
    report.update(
        model_version=predictor.model_version, folder=str(args.folder), errors=errors, counts=counts
    )
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


def threshold(args: argparse.Namespace) -> int:
    items, source = list_labelled_images(args.on), f"the folder {args.on}"
    old, new = repick(
        args.model_dir, items, source, args.policy, args.min_sensitivity, args.quantile, args.seed, progress
    )
    print(f"{len(items)} images from {source}")
    for name, report in (("old", old), ("new", new)):
        print(
            f"{name} threshold {report['threshold']:.6f}: sensitivity {report['sensitivity']:.4f}, "
            f"specificity {report['specificity']:.4f}"
        )
    print(f"stored in {args.model_dir / CARD_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumoscan", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="folder with model_card.json (default model_weights/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="score files and folders; CSV on stdout or --csv")
    p.add_argument("paths", type=Path, nargs="+")
    p.add_argument("--csv", type=Path, help="write the CSV here instead of stdout")
    p.add_argument(
        "--maps",
        type=Path,
        help="also write each image's Grad-CAM map as DIR/<file stem>.npy: the raw 2-D map at the model's "
        "grid, values in [0, 1], covering the image as stretched to the square input, row 0 at the top",
    )
    p.add_argument("--no-gate", action="store_true", help="score even images the non-X-ray gate would refuse")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="the web app's database: use its site threshold for this model version when one is set "
        "(default: $DATABASE_URL; without either, the model card's threshold)",
    )
    p.set_defaults(run=predict)
    e = commands.add_parser("evaluate", help="metrics at the stored threshold on a NORMAL/ PNEUMONIA/ folder")
    e.add_argument("folder", type=Path)
    e.add_argument("--json", type=Path, help="also write the metrics here")
    e.set_defaults(run=evaluate)
    t = commands.add_parser("threshold", help="re-pick and store the threshold from a labelled folder")
    t.add_argument("--policy", choices=POLICIES, required=True)
    t.add_argument("--min-sensitivity", type=float, default=0.95, help="for --policy sensitivity")
    t.add_argument(
        "--on",
        type=Path,
        default=external_folder(),
        help="NORMAL/ PNEUMONIA/ folder (default: the external set the committed threshold was picked on)",
    )
    t.add_argument(
        "--quantile",
        type=float,
        default=QUANTILE,
        help="quantile of the bootstrap picks to store (0.5 = median; lower = safer sensitivity)",
    )
    t.add_argument("--seed", type=int, default=42, help="seed of the bootstrap resamples")
    t.set_defaults(run=threshold)
    args = parser.parse_args(argv)
    # Resolved once, so every command (threshold writes to it) reads the same folder.
    args.model_dir = model_dir_in_use(args.model_dir)
    card = args.model_dir / CARD_FILE
    if not card.is_file():
        parser.error(f"no model: {card} is missing; set MODEL_DIR or --model-dir")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
