"""Compressed DICOM as archives export it: every codec decodes real X-rays, scores them like the
PNG, and refuses a compressed bomb before it inflates.

Files are built here from held-out X-rays (never stored): the 8-bit gray image becomes 12-bit
stored values v = round(g * 4095 / 255) with Window Center 2048 / Width 4096, the mapping
README.md documents, so a lossless file displays as the PNG give or take one grey level.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from pneumoscan.dataset import external_folder
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Predictor

imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (requirements-dev.txt) encodes")

BITS = 12
TOP = 2**BITS - 1
LOSSLESS = [JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEG2000Lossless, RLELossless]
LOSSY = [JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000]
PROBABILITY_TOLERANCE = 0.01
"""A lossless file shows the PNG within one grey level (12-bit -> 8-bit rounding): the served
probability moves by at most this much."""
LOSSY_MEAN_ERROR = 4.0
"""Mean absolute grey-level difference allowed after lossy compression at the settings below
(JPEG quality 95, JPEG-LS NEAR=2, JPEG 2000 at 45 dB PSNR: about 1)."""
START_OF_FRAME = {
    JPEGBaseline8Bit: b"\xff\xc0",
    JPEGExtended12Bit: b"\xff\xc1",
    JPEGLossless: b"\xff\xc3",
    JPEGLosslessSV1: b"\xff\xc3",
    JPEGLSLossless: b"\xff\xf7",
    JPEGLSNearLossless: b"\xff\xf7",
}


@pytest.fixture(scope="module")
def held_out() -> list[np.ndarray]:
    """Two NORMAL and two PNEUMONIA X-rays the model was not trained on, as 8-bit gray."""
    folder = external_folder()
    paths = [path for name in ("NORMAL", "PNEUMONIA") for path in sorted((folder / name).glob("*.jpeg"))[:2]]
    if len(paths) < 4:
        pytest.skip(f"held-out chest X-rays not found at {folder}; set PNEUMOSCAN_DATA to the data folder")
    return [np.asarray(Image.open(path).convert("L")) for path in paths]


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor.load(model_dir, threads=1)


def to_stored(gray: np.ndarray) -> np.ndarray:
    """The documented 8-bit -> 12-bit mapping; the window below maps it back."""
    return np.round(gray.astype(np.float64) * TOP / 255.0).astype(np.uint16)


def encode(stored: np.ndarray, syntax: UID, predictor: int = 1) -> bytes:
    """One compressed frame of 12-bit `stored` (8-bit for baseline JPEG)."""
    if syntax in (JPEGLosslessSV1, JPEGLossless):
        return imagecodecs.jpeg8_encode(stored, lossless=True, predictor=predictor, bitspersample=BITS)
    if syntax == JPEGExtended12Bit:
        return imagecodecs.jpeg8_encode(stored, level=95, bitspersample=BITS)
    if syntax == JPEGBaseline8Bit:
        return imagecodecs.jpeg8_encode((stored >> 4).astype(np.uint8), level=95)
    if syntax in (JPEGLSLossless, JPEGLSNearLossless):
        return imagecodecs.jpegls_encode(stored, level=0 if syntax == JPEGLSLossless else 2)
    lossless = syntax == JPEG2000Lossless
    return imagecodecs.jpeg2k_encode(
        stored, level=0 if lossless else 45, codecformat="J2K", reversible=lossless, bitspersample=BITS
    )


def dicom_file(
    stored: np.ndarray,
    syntax: UID,
    *,
    predictor: int = 1,
    photometric: str = "MONOCHROME2",
    frames: list[bytes] | None = None,
    declared_frames: int | None = None,
    fragments: int = 1,
) -> bytes:
    """A DX DICOM file in `syntax`, windowed over the full 12-bit range; `fragments` > 1 splits
    each frame as archives do, with an empty offset table."""
    eight = syntax == JPEGBaseline8Bit
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = SecondaryCaptureImageStorage, generate_uid(), "DX"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, photometric, 0
    ds.BitsAllocated, ds.BitsStored = (8, 8) if eight else (16, BITS)
    ds.HighBit = ds.BitsStored - 1
    ds.WindowCenter, ds.WindowWidth = (128, 256) if eight else (2048, 4096)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if syntax == RLELossless and frames is None:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = stored.tobytes()
        ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        frames = frames or [encode(stored, syntax, predictor)]
        ds.PixelData = encapsulate(frames, fragments_per_frame=fragments, has_bot=fragments == 1)
        ds["PixelData"].VR = "OB"
    if declared_frames is not None:
        ds.NumberOfFrames = declared_frames
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return buffer.getvalue()


def grey_difference(data: bytes, gray: np.ndarray) -> np.ndarray:
    decoded = decode_image(data)
    assert decoded.source_format == "dicom" and decoded.gray.shape == gray.shape
    return np.abs(decoded.gray.astype(int) - gray.astype(int))


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda syntax: syntax.name)
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_lossless_dicom_shows_the_png_within_one_grey_level(
    held_out: list[np.ndarray], syntax: UID, photometric: str
) -> None:
    gray = held_out[1]
    stored = to_stored(gray)
    if photometric == "MONOCHROME1":
        stored = TOP - stored
    assert grey_difference(dicom_file(stored, syntax, photometric=photometric), gray).max() <= 1


@pytest.mark.parametrize("predictor", range(1, 8))
def test_jpeg_lossless_decodes_with_every_predictor(held_out: list[np.ndarray], predictor: int) -> None:
    gray = held_out[2]
    data = dicom_file(to_stored(gray), JPEGLossless, predictor=predictor)
    assert grey_difference(data, gray).max() <= 1


@pytest.mark.parametrize("syntax", LOSSY, ids=lambda syntax: syntax.name)
def test_lossy_dicom_decodes_close_to_the_png(held_out: list[np.ndarray], syntax: UID) -> None:
    gray = held_out[3]
    assert grey_difference(dicom_file(to_stored(gray), syntax), gray).mean() <= LOSSY_MEAN_ERROR


def test_lossless_dicom_scores_like_the_png(held_out: list[np.ndarray], predictor: Predictor) -> None:
    for gray in held_out:
        expected = predictor.predict(decode_image(png(gray)))
        for syntax in LOSSLESS:
            got = predictor.predict(decode_image(dicom_file(to_stored(gray), syntax)))
            assert got.label == expected.label, syntax.name
            assert abs(got.probability - expected.probability) <= PROBABILITY_TOLERANCE, syntax.name


def test_lossy_dicom_is_scored(held_out: list[np.ndarray], predictor: Predictor) -> None:
    for syntax in LOSSY:
        estimate = predictor.predict(decode_image(dicom_file(to_stored(held_out[0]), syntax)))
        assert 0.0 <= estimate.probability <= 1.0, syntax.name


def test_compressed_multi_frame_dicom_is_refused(held_out: list[np.ndarray]) -> None:
    frame = encode(to_stored(held_out[0]), JPEGLosslessSV1)
    with pytest.raises(ImageRejected) as refused:
        decode_image(
            dicom_file(to_stored(held_out[0]), JPEGLosslessSV1, frames=[frame] * 50, declared_frames=50)
        )
    assert refused.value.status == 415 and "50 frames" in refused.value.message


def test_frames_beyond_the_declared_one_are_refused_before_decoding(held_out: list[np.ndarray]) -> None:
    """pydicom would decode every JPEG frame it finds: 50 here, thousands in a 20 MB upload."""
    frame = encode(to_stored(held_out[0]), JPEGLosslessSV1)
    data = dicom_file(to_stored(held_out[0]), JPEGLosslessSV1, frames=[frame] * 50)
    with pytest.raises(ImageRejected) as refused:
        decode_image(data)
    assert refused.value.status == 422 and "does not match its declared size" in refused.value.message


@pytest.mark.parametrize("syntax", [JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_one_frame_split_into_fragments_decodes(held_out: list[np.ndarray], syntax: UID) -> None:
    gray = held_out[0]
    assert grey_difference(dicom_file(to_stored(gray), syntax, fragments=3), gray).max() <= 1


def _small() -> np.ndarray:
    yy, xx = np.mgrid[0:96, 0:96]
    return ((xx * 40 + yy * 3) % (TOP + 1)).astype(np.uint16)


def _claiming(frame: bytes, marker: bytes, offset: int, size: int, side: int) -> bytes:
    """`frame` with the side lengths after `marker` (at `offset`, `size` bytes each) set to `side`."""
    at = frame.index(marker) + offset
    patched = bytearray(frame)
    for start in (at, at + size):
        patched[start : start + size] = side.to_bytes(size, "big")
    return bytes(patched)


def _bomb(syntax: UID, side: int) -> bytes:
    """A 96x96 DICOM whose compressed frame claims side x side pixels, or (RLE) whose segments
    inflate to 64 times their size."""
    small = _small()
    if syntax == RLELossless:
        segment = b"\x81\x00" * 2_000_000
        header = (2).to_bytes(4, "little") + (64).to_bytes(4, "little")
        header += (64 + len(segment)).to_bytes(4, "little") + bytes(52)
        return dicom_file(small, RLELossless, frames=[header + segment + segment])
    frame = encode(small, syntax)
    if syntax in (JPEG2000Lossless, JPEG2000):
        frame = _claiming(_claiming(frame, b"\xff\x51", 6, 4, side), b"\xff\x51", 22, 4, side)
    else:
        frame = _claiming(frame, START_OF_FRAME[syntax], 5, 2, side)
    stored = small if syntax != JPEGBaseline8Bit else small >> 4
    return dicom_file(stored, syntax, frames=[frame])


def _peak_rss_mb(action) -> float:
    """Peak resident memory over the start while `action` runs (Linux: VmHWM reset via clear_refs)."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("peak memory can be reset only on Linux")

    def field(name: str) -> float:
        line = next(line for line in status.read_text().splitlines() if line.startswith(name))
        return int(line.split()[1]) / 1024

    start = field("VmRSS:")
    action()
    return field("VmHWM:") - start


@pytest.mark.parametrize("syntax", [*LOSSLESS, *LOSSY], ids=lambda syntax: syntax.name)
def test_compressed_bomb_is_refused_before_it_inflates(syntax: UID) -> None:
    data = _bomb(syntax, 12_000)  # 12000 x 12000 at 16 bits: 275 MB if decoded
    decode_image(dicom_file(_small(), JPEGLSLossless))  # pydicom and its codecs imported beforehand
    refused: list[ImageRejected] = []

    def attempt() -> None:
        with pytest.raises(ImageRejected) as caught:
            decode_image(data)
        refused.append(caught.value)

    assert _peak_rss_mb(attempt) < 48
    assert refused[0].status == 422


def test_codecs_are_imported_at_the_first_dicom_not_at_start(tmp_path: Path) -> None:
    sample = tmp_path / "sample.dcm"
    sample.write_bytes(dicom_file(_small(), JPEGLSLossless))
    script = (
        "import sys, pathlib\n"
        "import pneumoscan.decode, pneumoscan.formats\n"
        "codecs = ('pydicom', 'libjpeg', 'openjpeg', 'rle')\n"
        "print(sorted(name for name in codecs if name in sys.modules))\n"
        f"pneumoscan.decode.decode_image(pathlib.Path({str(sample)!r}).read_bytes())\n"
        "print(sorted(name for name in codecs if name in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    at_start, after = result.stdout.splitlines()
    assert at_start == "[]"
    assert "'libjpeg'" in after and "'pydicom'" in after
