"""Drift: how far a week's uploads sit from the training X-rays, on what the non-X-ray gate reads.

The served model ships no per-statistic training means (the gate stores ranges), so the
reference is measured on the validation split of the training folder through the served path
(`python -m pneumoscan.training.drift_reference`, also run by publishing) and shipped as
`drift_reference.json` beside the model. A week is compared by the shift of its mean reading,
in units of the validation X-rays' spread; the limit for a week of n uploads is what means of
n validation X-rays reach (a high quantile of many random draws), so a week is flagged only
when it moves beyond what the validation split itself shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pneumoscan.gate import STATISTICS

REFERENCE_FILE = "drift_reference.json"
READINGS = (*STATISTICS, "feature_distance")
# Week sizes with a tabulated limit; a week uses the largest size not above its own count.
WEEK_SIZES = (5, 10, 20, 50, 100, 200, 500, 1000)
DRAWS = 5000
# Per reading; with six readings a week of X-rays like the validation ones is flagged about 1 % of the time.
QUANTILE = 1 - 0.01 / len(READINGS)


def reference_from_readings(readings: np.ndarray, source: str, model_version: str, seed: int = 0) -> dict:
    """The reference from validation readings (N, len(READINGS)): each reading's mean and spread,
    and per week size the |shift| of the mean (in spreads) that random weeks of validation X-rays
    stay within at QUANTILE."""
    readings = np.asarray(readings, dtype=np.float64)
    mean, spread = readings.mean(axis=0), readings.std(axis=0)
    rng = np.random.default_rng(seed)
    limits = {}
    for size in WEEK_SIZES:
        draws = readings[rng.integers(0, len(readings), size=(DRAWS, size))].mean(axis=1)
        shifts = np.abs(draws - mean) / spread
        limits[str(size)] = dict(zip(READINGS, np.quantile(shifts, QUANTILE, axis=0).tolist(), strict=True))
    return {
        "model_version": model_version,
        "source": source,
        "images": len(readings),
        "quantile": QUANTILE,
        "draws": DRAWS,
        "mean": dict(zip(READINGS, mean.tolist(), strict=True)),
        "spread": dict(zip(READINGS, spread.tolist(), strict=True)),
        "limits": limits,
    }


def write_reference(model_dir: Path, reference: dict) -> Path:
    path = Path(model_dir) / REFERENCE_FILE
    path.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    return path


def load_reference(model_dir: Path) -> dict | None:
    """The model's drift reference, or None when it ships none."""
    path = Path(model_dir) / REFERENCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def compare_week(readings: list[dict], reference: dict) -> dict:
    """One week's gate readings against the reference: mean feature distance, each reading's
    shift in spreads, the limits that apply and whether the week is flagged (None: too few)."""
    values = np.array([[reading[name] for name in READINGS] for reading in readings], dtype=np.float64)
    n = len(values)
    sizes = [size for size in WEEK_SIZES if size <= n]
    shifts = {
        name: (float(values[:, i].mean()) - reference["mean"][name]) / reference["spread"][name]
        for i, name in enumerate(READINGS)
    }
    limits = reference["limits"][str(sizes[-1])] if sizes else None
    beyond = [name for name in READINGS if limits and abs(shifts[name]) > limits[name]]
    return {
        "uploads": n,
        "feature_distance": float(values[:, -1].mean()),
        "shifts": shifts,
        "limits": limits,
        "beyond": beyond,
        "flagged": bool(beyond) if limits else None,
    }
