"""A built-in synthetic picture, so a check or a first try needs no file."""

from __future__ import annotations

import io

from PIL import Image


def sample_jpeg() -> bytes:
    """A 320x240 gray gradient as JPEG: a valid image, not a photo of anything."""
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
