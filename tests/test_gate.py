"""The non-X-ray gate: photographs, documents, screenshots and blank images are refused (422),
chest X-rays are not."""

import io

import numpy as np
import pytest
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Predictor

non_xrays = pytest.importorskip("pneumoscan.training.non_xrays", reason="needs scikit-image and scikit-learn")


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.load(model_dir, threads=2)


def refusal(predictor, data: bytes) -> ImageRejected | None:
    try:
        predictor.predict(decode_image(data))
    except ImageRejected as exc:
        return exc
    return None


def test_at_least_99_percent_of_non_xrays_are_refused(predictor):
    uploads = list(non_xrays.non_xray_uploads())
    accepted = [name for name, data in uploads if refusal(predictor, data) is None]
    assert len(uploads) > 250
    assert len(accepted) <= 0.01 * len(uploads), accepted


def test_validation_xrays_pass_the_gate(predictor, validation_items):
    sample = validation_items[::2]
    refused = [i.path.name for i in sample if refusal(predictor, i.path.read_bytes()) is not None]
    assert len(refused) <= 0.01 * len(sample) + 1, refused


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_refusals_say_why(predictor):
    colour = np.zeros((200, 200, 3), np.uint8)
    colour[:, :100] = (220, 30, 30)
    colour[:, 100:] = (30, 200, 40)
    blank = np.full((200, 200), 17, np.uint8)
    for pixels, reason in ((colour, "colour"), (blank, "blank")):
        refused = refusal(predictor, png(pixels))
        assert refused is not None and refused.status == 422
        assert "chest X-ray" in refused.message and reason in refused.message
