"""Image formats known by their first bytes: what a body is, whatever its name or Content-Type says."""

from __future__ import annotations

# The formats the service decodes (Pillow's names), by their magic bytes: every (offset, bytes) must match.
ACCEPTED_SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("PNG", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("WEBP", ((0, b"RIFF"), (8, b"WEBP"))),
    ("GIF", ((0, b"GIF87a"),)),
    ("GIF", ((0, b"GIF89a"),)),
    ("BMP", ((0, b"BM"),)),
)

# Formats refused by name (415 unsupported_image_format), recognised the same way.
REFUSED_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)


def _matches(data: bytes, parts: tuple[tuple[int, bytes], ...]) -> bool:
    return all(data[offset : offset + len(magic)] == magic for offset, magic in parts)


def accepted_format(data: bytes) -> str | None:
    """The accepted format these bytes start like (JPEG, PNG, WEBP, GIF, BMP), or None."""
    return next((name for name, parts in ACCEPTED_SIGNATURES if _matches(data, parts)), None)


def refused_format(data: bytes) -> str | None:
    """The refused format these bytes are (TIFF, PDF, EPS, ICO, PSD, SVG), or None."""
    for signature, name in REFUSED_SIGNATURES:
        if data.startswith(signature):
            return name
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return "SVG"
    return None


def looks_like_an_image(data: bytes) -> bool:
    """True when the bytes start like a picture, accepted or refused: decoding then says what is wrong with it."""
    return accepted_format(data) is not None or refused_format(data) is not None
