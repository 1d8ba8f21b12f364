"""Decoding and preprocessing: every accepted kind of picture classifies, the rest get a clear 4xx."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.errors import ApiError
from app.imaging import INPUT_SIZE, open_image, preprocess, to_pixels
from app.models.network import Normalise
from tests.helpers import PICTURES, animated, encode, photo, sixteen_bit_gray

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_accepted_pictures_become_224x224_rgb_pixels(kind: str) -> None:
    pixels = preprocess(PICTURES[kind](), MAX_PIXELS)
    assert pixels.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert pixels.dtype == np.uint8 and pixels.flags.writeable
    assert int(pixels.max()) > int(pixels.min())  # a picture, not a blank


def test_sixteen_bit_keeps_its_range() -> None:
    image = open_image(sixteen_bit_gray(), MAX_PIXELS)
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
    first = open_image(animated("GIF"), MAX_PIXELS)
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


@pytest.mark.parametrize("size", [(500, 375), (375, 500), (300, 300), (1000, 333), (224, 225), (257, 900)])
def test_preprocessing_matches_torchvisions_recipe(size: tuple[int, int]) -> None:
    from torchvision import transforms as tv

    normalize = tv.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    reference = tv.Compose([tv.Resize(256), tv.CenterCrop(224), tv.ToTensor(), normalize])
    image = photo("astronaut", size)
    ours = Normalise()(torch.from_numpy(to_pixels(image)).unsqueeze(0))[0]  # the torch runtime's graph does this
    difference = (reference(image) - ours).abs()
    assert float(difference.max()) < 0.02  # at most one grey level (1/255/std < 0.0175), from rounding
    assert float(difference.mean()) < 0.003


def test_a_long_thin_strip_costs_no_more_than_a_photo() -> None:
    import resource

    strip = encode(Image.new("RGB", (1, 20000), (90, 140, 200)), "PNG")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pixels = preprocess(strip, MAX_PIXELS)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert pixels.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert grown_kb < 200 * 1024  # resize-then-crop would allocate 256 x 5,120,000 x 3 bytes (3.9 GB)
