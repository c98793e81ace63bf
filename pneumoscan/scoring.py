"""Scoring files on disk with the served model, one at a time, for the CLI's predict and evaluate."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Prediction, Predictor


@dataclass(frozen=True)
class Scored:
    path: Path
    prediction: Prediction | None
    error: str | None


def score_files(predictor: Predictor, paths: Iterable[Path], check_xray: bool = True) -> Iterator[Scored]:
    """Each file through the app's own image path; a bad file gives an error, the batch goes on."""
    for path in paths:
        try:
            prediction = predictor.predict(decode_image(Path(path).read_bytes()), check_xray=check_xray)
            yield Scored(Path(path), prediction, None)
        except (ImageRejected, OSError) as exc:
            yield Scored(Path(path), None, getattr(exc, "message", None) or str(exc))
