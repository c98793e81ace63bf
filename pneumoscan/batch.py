"""Files on disk through the served model, a few per ONNX Runtime call: the CLI's predict,
evaluate and threshold."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from pneumoscan.decode import DecodedImage, decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Estimate, Predictor

# Images per session call: on 2 cores the per-image time stops falling at about 8.
FILES_PER_CALL = 8


@dataclass(frozen=True)
class FileEstimate:
    """A file's estimate, or why it has none."""

    path: Path
    estimate: Estimate | None
    error: str | None


def estimate_files(
    predictor: Predictor, paths: Iterable[Path], check_xray: bool = True, threshold: float | None = None
) -> Iterator[FileEstimate]:
    """Each file through the app's own image path, in the order given; a bad file gives an error,
    the batch goes on. `threshold` (a site's) replaces the card's when given."""
    files = iter(paths)
    while chunk := [Path(path) for path in islice(files, FILES_PER_CALL)]:
        decoded: list[DecodedImage | ImageRejected | OSError] = []
        for path in chunk:
            try:
                decoded.append(decode_image(path.read_bytes()))
            except (ImageRejected, OSError) as exc:
                decoded.append(exc)
        images = [image for image in decoded if isinstance(image, DecodedImage)]
        scored = iter(predictor.predict_many(images, check_xray, threshold) if images else [])
        for path, image in zip(chunk, decoded, strict=True):
            result = next(scored) if isinstance(image, DecodedImage) else image
            if isinstance(result, Estimate):
                yield FileEstimate(path, result, None)
            else:
                yield FileEstimate(path, None, message_of(result))


def message_of(error: Exception) -> str:
    """What a person should read: a refusal's own message, else the exception's text."""
    return getattr(error, "message", None) or str(error)
