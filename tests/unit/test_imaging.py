"""Decoding and preprocessing: every accepted kind of picture classifies, the rest get a clear 4xx."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.errors import ApiError
from app.imaging import INPUT_SIZE, open_image, preprocess
from tests.conftest import encode, photo

MAX_PIXELS = 40_000_000


def _animated(fmt: str) -> bytes:
    frames = [photo("chelsea", (120, 90)), photo("coffee", (120, 90))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    image = photo("coffee", (100, 80)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)


def _sixteen_bit_gray() -> bytes:
    ramp = np.linspace(0, 65535, 200 * 150, dtype=np.uint16).reshape(150, 200)
    return encode(Image.fromarray(ramp), "PNG")


PICTURES = {
    "jpeg": lambda: encode(photo()),
    "png": lambda: encode(photo(), "PNG"),
    "webp": lambda: encode(photo(), "WEBP"),
    "gif": lambda: encode(photo(), "GIF"),
    "bmp": lambda: encode(photo(), "BMP"),
    "cmyk-jpeg": lambda: encode(photo().convert("CMYK"), "JPEG"),
    "rgba-png": lambda: encode(photo().convert("RGBA"), "PNG"),
    "gray-alpha-png": lambda: encode(photo().convert("LA"), "PNG"),
    "palette-transparent-png": _palette_with_transparency,
    "16-bit-png": _sixteen_bit_gray,
    "animated-gif": lambda: _animated("GIF"),
    "animated-webp": lambda: _animated("WEBP"),
    "grayscale-jpeg": lambda: encode(photo().convert("L"), "JPEG"),
    "tiny-png": lambda: encode(photo("coffee", (3, 2)), "PNG"),
}


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_accepted_pictures_become_normalised_tensors(kind: str) -> None:
    tensor = preprocess(PICTURES[kind](), MAX_PIXELS)
    assert tensor.shape == (3, INPUT_SIZE, INPUT_SIZE)
    assert tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()
    assert float(tensor.min()) > -3.0 and float(tensor.max()) < 3.0


def test_sixteen_bit_keeps_its_range() -> None:
    image = open_image(_sixteen_bit_gray(), MAX_PIXELS)
    values = np.asarray(image)
    assert image.mode == "RGB"
    assert values.min() < 10 and values.max() > 245


def test_transparency_is_composited_on_white() -> None:
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert np.asarray(open_image(encode(clear, "PNG"), MAX_PIXELS)).min() == 255


def test_exif_orientation_is_applied() -> None:
    image = photo("chelsea", (400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    rotated = open_image(encode(image, "JPEG", exif=exif.tobytes()), MAX_PIXELS)
    assert rotated.size == (200, 400)


def test_animated_gif_uses_its_first_frame() -> None:
    first = open_image(_animated("GIF"), MAX_PIXELS)
    still = open_image(encode(photo("chelsea", (120, 90)), "GIF"), MAX_PIXELS)
    assert np.abs(np.asarray(first, dtype=int) - np.asarray(still, dtype=int)).mean() < 8


def _svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


REFUSED = {
    "tiff": (lambda: encode(photo(), "TIFF"), 415, "TIFF"),
    "pdf": (lambda: encode(photo(), "PDF"), 415, "PDF"),
    "eps": (lambda: encode(photo(), "EPS"), 415, "EPS"),
    "svg": (_svg, 415, "SVG"),
    "text": (lambda: b"hello, this is not a picture", 415, "not an image"),
    "empty": (lambda: b"", 400, "empty"),
    "truncated-jpeg": (lambda: encode(photo())[:3000], 400, "truncated"),
    "truncated-png": (lambda: encode(photo(), "PNG")[:5000], 400, "truncated"),
    "too-many-pixels": (lambda: encode(Image.new("1", (8000, 6000)), "PNG"), 413, "pixels"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_refused_inputs_say_what_was_wrong(kind: str) -> None:
    make, status, words = REFUSED[kind]
    with pytest.raises(ApiError) as caught:
        open_image(make(), max_pixels=20_000_000)
    assert caught.value.status == status
    assert words.lower() in caught.value.message.lower()


def test_decompression_bomb_over_twice_the_limit_is_refused() -> None:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1_000_000
    try:
        with pytest.raises(ApiError) as caught:
            open_image(encode(Image.new("1", (4000, 4000)), "PNG"), max_pixels=1_000_000)
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    assert caught.value.status == 413
