"""The one image path: decode -> grayscale -> 224x224 -> CLAHE -> Xception scaling."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.preprocess import CANONICAL_SIZE as INPUT_SIZE
from pneumoscan.preprocess import Preprocessing, resize_to_input, to_model_input


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_model_input_shape_range_and_channels():
    gray = np.random.default_rng(0).integers(0, 256, (300, 250), dtype=np.uint8)
    x = to_model_input(gray)
    assert x.shape == (INPUT_SIZE, INPUT_SIZE, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert np.array_equal(x[:, :, 0], x[:, :, 2])


def test_contrast_is_normalised_before_scaling():
    """CLAHE stretches a washed-out image's local contrast; plain scaling would not."""
    scene = cv2.GaussianBlur(
        np.random.default_rng(1).integers(0, 256, (224, 224)).astype(np.uint8), (0, 0), 4
    )
    washed_out = (scene.astype(np.float32) * 0.3 + 90).astype(np.uint8)
    plain = washed_out.astype(np.float32) / 127.5 - 1
    assert to_model_input(washed_out)[:, :, 0].std() > 2 * plain.std()


def test_224_images_are_not_resampled_and_others_are():
    gray = np.arange(224 * 224, dtype=np.uint32).reshape(224, 224).astype(np.uint8)
    assert resize_to_input(gray) is gray
    assert resize_to_input(np.zeros((1000, 800), np.uint8)).shape == (224, 224)
    assert resize_to_input(np.zeros((100, 90), np.uint8)).shape == (224, 224)


def test_rejects_pixels_that_skipped_decoding():
    with pytest.raises(ValueError, match="2-D uint8"):
        to_model_input(np.zeros((224, 224, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        to_model_input(np.zeros((224, 224), np.float32))


def test_a_colour_and_a_gray_copy_of_an_image_give_the_same_input():
    gray = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (224, 224)).astype(np.uint8), (0, 0), 3)
    from_gray = to_model_input(decode_image(jpeg(gray)).gray)
    from_rgb = to_model_input(decode_image(jpeg(np.repeat(gray[:, :, None], 3, axis=2))).gray)
    assert np.abs(from_gray - from_rgb).max() < 0.05


def test_blanked_corners_hide_printed_text_and_nothing_else():
    """A clock time printed top right, as machines do, reaches the model only when corners are kept."""
    gray = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, (224, 224)).astype(np.uint8), (0, 0), 3)
    stamped = cv2.putText(gray.copy(), "15:26:54", (160, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    centred = cv2.putText(gray.copy(), "15:26:54", (80, 110), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    masked = Preprocessing(input_size=128, clahe_clip=0.0, corner_mask=0.14)
    kept = Preprocessing(input_size=128, clahe_clip=0.0)

    assert np.array_equal(to_model_input(stamped, masked), to_model_input(gray, masked))
    assert not np.array_equal(to_model_input(centred, masked), to_model_input(gray, masked))
    assert not np.array_equal(to_model_input(stamped, kept), to_model_input(gray, kept))
    corner = to_model_input(gray, masked)[:17, :44, 0]
    assert (corner == -1.0).all()


def test_training_reads_images_through_the_serving_path(xray_paths):
    """train.py's pixels, passed to to_model_input, are exactly what the app feeds the model."""
    from pneumoscan.dataset import LabelledImage
    from pneumoscan.training.served_files import load_pixels

    items = [LabelledImage(p, 0) for p in xray_paths[:6]]
    for item, pixels in zip(items, load_pixels(items), strict=False):
        served = to_model_input(decode_image(item.path.read_bytes()).gray)
        assert np.array_equal(to_model_input(pixels), served)
