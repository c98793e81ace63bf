"""Bytes -> pixels: every bad upload refused with the right status, every odd valid one decoded."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, features

from pneumoscan.decode import DECODERS, MAX_PIXELS, MIN_SIDE, decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED_LABELS, FORMATS, detect


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def reference_gray(data: bytes) -> np.ndarray:
    """The contract training relies on for ordinary 8-bit JPEG and PNG."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L"))


def rejected(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data)
    return caught.value


def chest_like(width: int = 200, height: int = 300) -> np.ndarray:
    """A gray, X-ray-like test card: dark background, a bright ellipse, a marker at top left."""
    yy, xx = np.mgrid[0:height, 0:width]
    body = ((xx - width / 2) / (width * 0.4)) ** 2 + ((yy - height / 2) / (height * 0.45)) ** 2 < 1
    gray = (30 + 150 * body + 40 * np.sin(xx / 7.0) * body).astype(np.uint8)
    gray[:20, :30] = 255
    return gray


@pytest.fixture(scope="module")
def xray_bytes(xray_paths: list[Path]) -> bytes:
    return xray_paths[0].read_bytes()


@pytest.fixture(scope="module")
def xray_image(xray_bytes: bytes) -> Image.Image:
    return Image.open(io.BytesIO(xray_bytes)).convert("L")


def test_matches_training_contract_on_real_xrays(xray_paths: list[Path]) -> None:
    for path in xray_paths[:40]:
        data = path.read_bytes()
        decoded = decode_image(data)
        assert np.array_equal(decoded.gray, reference_gray(data)), path.name
        assert decoded.gray.dtype == np.uint8 and decoded.gray.flags.c_contiguous
        assert decoded.source_format == "jpeg"
        assert decoded.colourfulness < 1.0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_matches_training_contract_on_synthetic_images(fmt: str, mode: str) -> None:
    data = encode(Image.fromarray(chest_like()).convert(mode), fmt)
    decoded = decode_image(data)
    assert np.array_equal(decoded.gray, reference_gray(data))
    assert decoded.source_format == fmt.lower()
    assert (decoded.width, decoded.height) == (200, 300)


def test_format_is_decided_by_content_not_by_name() -> None:
    png = encode(Image.fromarray(chest_like()), "PNG")
    assert decode_image(png).source_format == "png"
    assert rejected(b"GIF89a this is not a JPEG even if named x.jpg").status == 415


def test_every_listed_format_has_a_decoder_and_is_recognised_by_content() -> None:
    assert set(DECODERS) == {fmt.name for fmt in FORMATS}
    samples = {
        "jpeg": encode(Image.fromarray(chest_like()), "JPEG"),
        "png": encode(Image.fromarray(chest_like()), "PNG"),
        "dicom": bytes(128) + b"DICM" + bytes(64),
    }
    assert {name: detect(data).name for name, data in samples.items()} == {name: name for name in samples}
    assert decode_image(samples["jpeg"]).source_format == "jpeg"


def test_mpo_jpeg_is_read_as_its_primary_image() -> None:
    """Some cameras write JPEGs with extra frames (MPO); every viewer shows the first."""
    primary, second = Image.fromarray(chest_like()), Image.fromarray(255 - chest_like())
    data = encode(primary, "MPO", save_all=True, append_images=[second])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    decoded = decode_image(data)
    assert decoded.source_format == "jpeg"
    assert np.abs(decoded.gray.astype(int) - chest_like().astype(int)).mean() < 3


def test_empty_file_is_a_bad_request() -> None:
    error = rejected(b"")
    assert error.status == 400
    assert "empty" in error.message


def _zip_with_an_xray() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xray.jpeg", encode(Image.fromarray(chest_like()), "JPEG"))
    return buffer.getvalue()


def _animated_gif() -> bytes:
    frames = [Image.fromarray(chest_like()), Image.fromarray(255 - chest_like())]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=100)


def _multipage_tiff() -> bytes:
    pages = [Image.fromarray(chest_like()) for _ in range(3)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


UNSUPPORTED = {
    "text": (lambda: b"Patient scan notes\nnothing to see here\n", "text file"),
    "utf16 text": (lambda: "notes about a chest film".encode("utf-16"), "text file"),
    "pdf": (lambda: encode(Image.fromarray(chest_like()).convert("RGB"), "PDF"), "PDF"),
    "html": (lambda: b"<!DOCTYPE html><html><body><img src=x.jpg></body></html>", "HTML"),
    "svg": (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "SVG"),
    "xml": (lambda: b'<?xml version="1.0"?><study><id>1</id></study>', "XML"),
    "zip": (_zip_with_an_xray, "ZIP"),
    "gif": (lambda: encode(Image.fromarray(chest_like()), "GIF"), "GIF"),
    "animated gif": (_animated_gif, "animated GIF"),
    "tiff": (lambda: encode(Image.fromarray(chest_like()), "TIFF"), "TIFF"),
    "multi-page tiff": (_multipage_tiff, "multi-page TIFF (3 pages)"),
    "bmp": (lambda: encode(Image.fromarray(chest_like()), "BMP"), "BMP"),
    "random bytes": (
        lambda: bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)),
        "not recognised",
    ),
}
if features.check("webp"):
    UNSUPPORTED["webp"] = (lambda: encode(Image.fromarray(chest_like()).convert("RGB"), "WEBP"), "WebP")


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_content_is_refused_as_unsupported_media_type(name: str) -> None:
    make, words = UNSUPPORTED[name]
    error = rejected(make())
    assert error.status == 415
    assert words in error.message
    assert ACCEPTED_LABELS in error.message


def test_animated_png_is_refused() -> None:
    frames = [Image.fromarray(chest_like()), Image.fromarray(255 - chest_like())]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    error = rejected(data)
    assert error.status == 415
    assert "animated PNG with 2 frames" in error.message


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.7, 0.95, 0.999])
def test_truncated_jpeg_is_refused(xray_image: Image.Image, progressive: bool, fraction: float) -> None:
    data = encode(xray_image, "JPEG", quality=90, progressive=progressive)
    error = rejected(data[: int(len(data) * fraction)])
    assert error.status == 422
    assert "truncated" in error.message


def test_jpeg_cut_before_its_end_marker_is_refused_even_with_a_thumbnail_end_marker() -> None:
    data = encode(Image.fromarray(chest_like()), "JPEG")
    thumbnail_like = b"\xff\xef\x00\x06\xff\xd9\x00\x00"  # an APP15 segment holding FF D9
    assert rejected(data[:2] + thumbnail_like + data[2:-2]).status == 422
    assert decode_image(data[:2] + thumbnail_like + data[2:]).height == 300


def test_jpeg_with_trailing_bytes_after_its_end_still_decodes() -> None:
    data = encode(Image.fromarray(chest_like()), "JPEG")
    assert np.array_equal(decode_image(data + b"\x00" * 64).gray, reference_gray(data))


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_png_is_refused(xray_image: Image.Image, fraction: float) -> None:
    data = encode(xray_image, "PNG")
    error = rejected(data[: int(len(data) * fraction)])
    assert error.status == 422
    assert "damaged or truncated" in error.message


@pytest.mark.parametrize("magic", [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n"])
def test_right_magic_with_garbage_after_it_is_damaged(magic: bytes) -> None:
    error = rejected(magic + bytes(range(256)) * 8)
    assert error.status == 422


def _png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG whose zero rows deflate to a few hundred KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    block = row * 1000
    pixels = b"".join(compressor.compress(block) for _ in range(height // 1000)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    return _png_bomb(40_000, 40_000)


def test_decompression_bomb_png_is_refused_before_decoding(png_bomb: bytes) -> None:
    assert len(png_bomb) < 1_000_000
    tracemalloc.start()
    error = rejected(png_bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert error.status == 422
    assert "too large" in error.message and "megapixels" in error.message
    assert peak < 20_000_000


def test_image_just_over_the_pixel_cap_is_refused_by_its_header() -> None:
    side = int(MAX_PIXELS**0.5) + 100
    error = rejected(_png_bomb(side, side))
    assert error.status == 422
    assert "too large" in error.message


def test_jpeg_claiming_huge_dimensions_is_refused() -> None:
    data = bytearray(encode(Image.fromarray(chest_like()), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60_000).to_bytes(2, "big") + (60_000).to_bytes(2, "big")
    error = rejected(bytes(data))
    assert error.status == 422
    assert "too large" in error.message


@pytest.mark.parametrize("size", [(MIN_SIDE - 1, 200), (200, MIN_SIDE - 1), (20, 20)])
def test_images_under_the_minimum_side_are_refused(size: tuple[int, int]) -> None:
    data = encode(Image.new("L", size, 128), "PNG")
    error = rejected(data)
    assert error.status == 422
    assert "too small" in error.message and f"{size[0]}x{size[1]}" in error.message


def test_image_at_the_minimum_side_is_accepted() -> None:
    assert decode_image(encode(Image.new("L", (MIN_SIDE, MIN_SIDE), 90), "PNG")).gray.shape == (
        MIN_SIDE,
        MIN_SIDE,
    )


def test_progressive_jpeg_matches_the_contract(xray_image: Image.Image) -> None:
    data = encode(xray_image, "JPEG", progressive=True, quality=92)
    assert np.array_equal(decode_image(data).gray, reference_gray(data))


def test_cmyk_jpeg_decodes_to_its_gray_rendering() -> None:
    rgb = Image.fromarray(chest_like()).convert("RGB")
    data = encode(rgb.convert("CMYK"), "JPEG", quality=95)
    decoded = decode_image(data)
    assert decoded.gray.shape == (300, 200)
    assert np.array_equal(decoded.gray, reference_gray(data))
    assert np.abs(decoded.gray.astype(int) - chest_like().astype(int)).mean() < 6


# EXIF orientation -> (transpose that undoes it when saving the upright picture rotated)
ORIENTATIONS = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_is_applied(fmt: str, orientation: int) -> None:
    upright = chest_like()
    stored = Image.fromarray(upright).transpose(ORIENTATIONS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (200, 300)
    assert np.array_equal(decoded.gray, reference_gray(data))
    assert decoded.gray[:15, :25].mean() > 240, "the marker must be back at the top left"
    assert decoded.gray[-15:, -25:].mean() < 60


@pytest.mark.parametrize("mode", ["1", "L", "P"])
def test_grayscale_bilevel_and_palette_png(mode: str) -> None:
    data = encode(Image.fromarray(chest_like()).convert(mode), "PNG")
    decoded = decode_image(data)
    assert np.array_equal(decoded.gray, reference_gray(data))
    assert decoded.colourfulness == 0.0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_areas_become_black(mode: str) -> None:
    rgba = np.zeros((100, 120, 4), dtype=np.uint8)
    rgba[:, :, :3] = 255
    rgba[:, 60:, 3] = 255  # left half fully transparent white, right half opaque white
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P":
        image = image.convert("P")
        image.info["transparency"] = image.getpixel((0, 0))
    else:
        image = image.convert(mode)
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.gray.shape == (100, 120)
    assert decoded.gray[:, :60].max() == 0
    assert decoded.gray[:, 60:].min() == 255


def test_16_bit_png_of_a_full_range_image_equals_its_8_bit_picture(xray_image: Image.Image) -> None:
    gray = np.asarray(xray_image)
    full = (gray.astype(np.uint16) - gray.min()) * 255 // max(1, int(np.ptp(gray)))
    decoded = decode_image(encode(Image.fromarray((full * 257).astype(np.uint16)), "PNG"))
    assert decoded.source_format == "png"
    assert np.array_equal(decoded.gray, full.astype(np.uint8))


def test_12_bit_values_in_a_16_bit_png_are_stretched_to_the_full_range() -> None:
    gray = chest_like()
    twelve = gray.astype(np.uint16) * 16
    decoded = decode_image(encode(Image.fromarray(twelve), "PNG"))
    expected = np.round((gray.astype(float) - gray.min()) * 255.0 / np.ptp(gray))
    assert decoded.gray.min() == 0 and decoded.gray.max() == 255
    assert np.abs(decoded.gray.astype(float) - expected).max() <= 1


def test_uniform_16_bit_png_does_not_divide_by_zero() -> None:
    decoded = decode_image(encode(Image.fromarray(np.full((80, 80), 1000, dtype=np.uint16)), "PNG"))
    assert decoded.gray.max() == 0


def test_very_large_image_is_decoded() -> None:
    big = Image.fromarray(chest_like()).resize((3000, 2500), Image.Resampling.BILINEAR).convert("RGB")
    data = encode(big, "JPEG", quality=85)
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (3000, 2500)
    assert np.array_equal(decoded.gray, reference_gray(data))


def test_colour_photo_is_colourful_and_xray_is_not(xray_bytes: bytes) -> None:
    stripes = np.zeros((120, 120, 3), dtype=np.uint8)
    stripes[:, ::2] = (220, 30, 30)
    stripes[:, 1::2] = (20, 60, 230)
    photo = decode_image(encode(Image.fromarray(stripes), "PNG"))
    assert photo.colourfulness > 50
    assert decode_image(xray_bytes).colourfulness == 0.0
