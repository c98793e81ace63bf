"""Files on disk through the served model, one at a time: the CLI's predict, evaluate and threshold."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Estimate, Predictor


@dataclass(frozen=True)
class FileEstimate:
    """A file's estimate, or why it has none."""

    path: Path
    estimate: Estimate | None
    error: str | None


def estimate_files(
    predictor: Predictor, paths: Iterable[Path], check_xray: bool = True, threshold: float | None = None
) -> Iterator[FileEstimate]:
    """Each file through the app's own image path; a bad file gives an error, the batch goes on.
    `threshold` (a site's) replaces the card's when given."""
    for path in paths:
        try:
            data = Path(path).read_bytes()
            estimate = predictor.predict(decode_image(data), check_xray=check_xray, threshold=threshold)
            yield FileEstimate(Path(path), estimate, None)
        except (ImageRejected, OSError) as exc:
            yield FileEstimate(Path(path), None, getattr(exc, "message", None) or str(exc))
