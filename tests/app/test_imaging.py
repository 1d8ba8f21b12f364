"""Decoding and preprocessing: every accepted kind of picture classifies, the rest get a clear 4xx.

Fidelity: for every mode, size and orientation, the pixels equal torchvision's Resize(256) + CenterCrop(224) of
the picture as shown (upright, 8-bit RGB, transparency on white, computed here the plain full-size way) within
one grey level (rounding), on average within a quarter of one. Memory: a picture costs its decoder's output and a
few MB more, whatever its size, mode or orientation (measured in a fresh process).
"""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from app.errors import ApiError
from app.imaging import INPUT_SIZE, open_image, preprocess, to_pixels
from app.models.network import Normalise
from tests.helpers import PICTURES, ROOT, animated, encode, photo, sixteen_bit_gray

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_accepted_pictures_become_224x224_rgb_pixels(kind: str) -> None:
    pixels = preprocess(PICTURES[kind](), MAX_PIXELS)
    assert pixels.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert pixels.dtype == np.uint8 and pixels.flags.writeable
    assert int(pixels.max()) > int(pixels.min())  # a picture, not a blank


def _as_shown(data: bytes) -> Image.Image:
    """The reference picture: upright, 16-bit as floor(v * 255 / peak), transparency on white, all at full size."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode == "I;16":
        values = np.asarray(image).astype(np.int64)
        peak = 65535 if values.max() > 255 else 255
        image = Image.fromarray((values * 255 // peak).astype(np.uint8))
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def _recipe(picture: Image.Image) -> np.ndarray:
    from torchvision import transforms as tv

    return np.asarray(tv.CenterCrop(224)(tv.Resize(256)(picture)), dtype=np.int16)


def _assert_faithful(data: bytes) -> None:
    difference = np.abs(preprocess(data, MAX_PIXELS).astype(np.int16) - _recipe(_as_shown(data)))
    assert int(difference.max()) <= 1  # rounding in Pillow's fixed-point filter, never a shift or a blur
    assert float(difference.mean()) < 0.25


@functools.cache
def _mosaic(size: tuple[int, int]) -> Image.Image:
    """Real photos at their native resolution, side by side: sharp detail and hard edges at every scale."""
    from skimage import data

    tiles = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    mosaic = Image.new("RGB", size)
    x = y = row_height = 0
    for index in range(10_000):
        if y >= size[1]:
            break
        tile = Image.fromarray(tiles[index % len(tiles)][..., :3])
        mosaic.paste(tile, (x, y))
        x, row_height = x + tile.width, max(row_height, tile.height)
        if x >= size[0]:
            x, y, row_height = 0, y + row_height, 0
    return mosaic


def _with_alpha(picture: Image.Image, mode: str = "RGBA") -> Image.Image:
    translucent = picture.convert(mode[:-1])
    translucent.putalpha(Image.linear_gradient("L").resize(picture.size))
    return translucent


def _palette(picture: Image.Image) -> Image.Image:
    return picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)


def _sixteen_bit(picture: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(picture.convert("L")).astype(np.uint16) * 257)


BIG_KINDS = {
    "rgb-png": lambda picture: encode(picture, "PNG"),
    "rgba-png": lambda picture: encode(_with_alpha(picture), "PNG"),
    "gray-alpha-png": lambda picture: encode(_with_alpha(picture, "LA"), "PNG"),
    "palette-transparent-png": lambda picture: encode(_palette(picture), "PNG", transparency=0),
    "16-bit-png": lambda picture: encode(_sixteen_bit(picture), "PNG"),
    "rgba-webp": lambda picture: encode(_with_alpha(picture), "WEBP", lossless=True),
    "palette-transparent-gif": lambda picture: encode(_palette(picture), "GIF", transparency=0),
}


@pytest.mark.parametrize("size", [(2049, 1537), (1030, 4100)], ids=["wide", "tall"])
@pytest.mark.parametrize("kind", sorted(BIG_KINDS))
def test_big_pictures_of_every_mode_match_the_recipe(kind: str, size: tuple[int, int]) -> None:
    _assert_faithful(BIG_KINDS[kind](_mosaic(size)))


@pytest.mark.parametrize("size", [(1043, 611), (611, 1043)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int, mode: str, size: tuple[int, int]) -> None:
    # 1043 / 611 x 256 = 437: torchvision's crop is one pixel off centre along the long side, so a box mapped to
    # the wrong side of the stored picture shows (a centred box would look right through any transpose).
    exif = Image.Exif()
    exif[0x0112] = orientation
    _assert_faithful(encode(_mosaic(size).convert(mode), "PNG", exif=exif.tobytes()))


def test_exif_orientation_turns_a_photo_upright() -> None:
    image = photo("chelsea", (400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    turned = preprocess(encode(image, "PNG", exif=exif.tobytes()), MAX_PIXELS)
    assert np.array_equal(turned, to_pixels(image.transpose(Image.Transpose.ROTATE_270)))


def test_open_image_keeps_the_decoders_output() -> None:
    image = open_image(sixteen_bit_gray(), MAX_PIXELS)
    assert image.mode == "I;16" and image.size == (200, 150)  # converted later, only where the recipe reads


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        (np.full((300, 300), 200, np.uint16), 200),  # 16-bit data within 8 bits shows as is
        (np.full((300, 300), 32768, np.uint16), 127),  # 32768 * 255 // 65535: data over 8 bits scale from 16
        (np.full((300, 300), -5, np.int32), 0),
        (np.full((300, 300), 70000, np.int32), 255),
    ],
)
def test_sixteen_and_32_bit_values_scale_in_integer_maths(values: np.ndarray, shown: int) -> None:
    pixels = to_pixels(Image.fromarray(values))
    assert pixels.min() == pixels.max() == shown


def test_sixteen_bit_keeps_its_range() -> None:
    values = np.zeros((300, 400), np.uint16)
    values[:, 200:] = 65535
    pixels = preprocess(encode(Image.fromarray(values), "PNG"), MAX_PIXELS)
    assert pixels.min() == 0 and pixels.max() == 255


def test_transparency_is_composited_on_white() -> None:
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert preprocess(encode(clear, "PNG"), MAX_PIXELS).min() == 255


def test_animated_gif_uses_its_first_frame() -> None:
    first = preprocess(animated("GIF"), MAX_PIXELS)
    still = preprocess(encode(photo("chelsea", (120, 90)), "GIF"), MAX_PIXELS)
    assert np.abs(first.astype(int) - still.astype(int)).mean() < 8


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


# Measured in a grandchild: Linux hands a process's high-water mark (ru_maxrss) on to the program it starts, so a
# child of this big test process would begin with our peak and hide its own; the launcher between them is small.
_LAUNCH = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], check=False).returncode)"
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    from app.imaging import preprocess

    def resident_kib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() // 1024

    warm_up, picture = (open(path, "rb").read() for path in sys.argv[1:3])
    preprocess(warm_up, 10**9)  # first-use costs (plugins, code paths) are not the picture's
    resident = resident_kib()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    pixels = preprocess(picture, 10**9)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sides = {"left": pixels[:, :60].tolist(), "right": pixels[:, -60:].tolist()}
    print(json.dumps({"resident": resident, "before": before, "after": after, "seconds": seconds, **sides}))
    """
)
HUGE = (6000, 6000)
STORED_BYTES = {"I;16": 2, "P": 1}  # bytes per pixel in Pillow's memory; every multi-band mode takes 4
ALLOWANCE_MIB = 24  # strips (256k pixels, a few copies of up to 8 bytes: ~10 MiB), 224 x 6000 x 4 bytes, malloc


def _huge(kind: str) -> Image.Image:
    """6000x6000 and small on the wire: left half one colour, right half another (transparent for alpha kinds)."""
    if kind == "16-bit-png":
        values = np.zeros(HUGE[::-1], np.uint16)
        values[:, HUGE[0] // 2 :] = 60000
        return Image.fromarray(values)
    if kind == "rgba-png":
        image = Image.new("RGBA", HUGE, (200, 30, 30, 255))
    else:
        image = Image.new("P", HUGE, 1)
        image.putpalette([0, 0, 0, 30, 200, 30])
    ImageDraw.Draw(image).rectangle((HUGE[0] // 2, 0, HUGE[0], HUGE[1]), fill=0)
    return image


HUGE_KINDS = {  # kind: (format, save options, the left and right colours shown)
    "16-bit-png": ("PNG", {}, (0, 0, 0), (233, 233, 233)),  # 60000 * 255 // 65535
    "rgba-png": ("PNG", {}, (200, 30, 30), (255, 255, 255)),
    "palette-transparent-png": ("PNG", {"transparency": 0}, (30, 200, 30), (255, 255, 255)),
    "palette-transparent-gif": ("GIF", {"transparency": 0}, (30, 200, 30), (255, 255, 255)),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(HUGE_KINDS))
def test_a_huge_picture_costs_its_decoders_output_and_a_few_mb(kind: str, tmp_path: Path) -> None:
    fmt, options, left, right = HUGE_KINDS[kind]
    huge = _huge(kind)
    decoded_mib = HUGE[0] * HUGE[1] * STORED_BYTES.get(huge.mode, 4) / 2**20
    (tmp_path / "huge").write_bytes(encode(huge, fmt, **options))
    (tmp_path / "small").write_bytes(encode(huge.resize((64, 64)), fmt, **options))
    del huge
    command = [sys.executable, "-c", _LAUNCH, sys.executable, "-c", _MEASURE, tmp_path / "small", tmp_path / "huge"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environment)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["before"] - measured["resident"] < 16 * 1024  # the high-water mark is this process's own
    grown_mib = (measured["after"] - measured["before"]) / 1024
    print(f"{kind}: {grown_mib:.1f} MiB for a {decoded_mib:.1f} MiB decoder output, {measured['seconds']:.2f} s")
    assert grown_mib < decoded_mib + ALLOWANCE_MIB, f"{grown_mib:.0f} MiB for a {decoded_mib:.0f} MiB decoder output"
    assert np.all(np.array(measured["left"]) == left) and np.all(np.array(measured["right"]) == right)
