"""Pixel limits shared by every decoder."""

MAX_PIXELS = 50_000_000
"""Largest image accepted, judged from the header before any pixel is decoded."""

DECODE_MAX_PIXELS = 8_000_000
"""Larger images are reduced while decoding, so no full-size copy of them is ever held."""
