"""Image bytes -> validated picture -> 224x224x3 uint8 pixels (the runtime's graph normalises them).

Memory is bounded by the output, not by the picture: beyond the decoder's own output, only strips of a few MB
and a 224-column intermediate are ever made, whatever the picture's size, mode (16-bit, alpha, palette) or
orientation. No full-size float, RGBA, RGB or rotated copy exists.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from app.errors import ApiError, Problems
from app.signatures import refused_format

# Pillow format name -> the content type clients send for it.
ACCEPTED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
ACCEPTED_CONTENT_TYPES = tuple(ACCEPTED_FORMATS.values())
CONTENT_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}

INPUT_SIZE = 224
RESIZE_SIZE = 256
STRIP_PIXELS = 1 << 18  # modes other than L and RGB are converted this many pixels at a time (a few MB)

Box = tuple[float, float, float, float]
Sides = tuple[int, int, int, int]
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_UPRIGHT: Sides = (0, 1, 2, 3)
# EXIF orientation -> the transpose that turns the stored picture upright, and for each side of the upright picture
# (left, top, right, bottom) the side of the stored picture it was.
_ORIENTATIONS: dict[int, tuple[Image.Transpose, Sides]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, (2, 1, 0, 3)),
    3: (Image.Transpose.ROTATE_180, (2, 3, 0, 1)),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, (0, 3, 2, 1)),
    5: (Image.Transpose.TRANSPOSE, (1, 0, 3, 2)),
    6: (Image.Transpose.ROTATE_270, (3, 0, 1, 2)),
    7: (Image.Transpose.TRANSVERSE, (3, 2, 1, 0)),
    8: (Image.Transpose.ROTATE_90, (1, 2, 3, 0)),
}
_SWAPS_AXES = (5, 6, 7, 8)


def _unsupported(name: str) -> ApiError:
    return ApiError(
        Problems.UNSUPPORTED_IMAGE_FORMAT, f"{name} images are not accepted", accepted=list(ACCEPTED_FORMATS)
    )


def invalid_image(message: str) -> ApiError:
    return ApiError(Problems.INVALID_IMAGE, message, accepted=list(ACCEPTED_FORMATS))


def normalize_content_type(value: str) -> str:
    """`image/JPEG; charset=x` -> `image/jpeg`, with common aliases folded."""
    base = value.split(";", 1)[0].strip().lower()
    return CONTENT_TYPE_ALIASES.get(base, base)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode bytes into a picture, or raise ApiError saying what was wrong.

    The picture is the decoder's own output, in its own mode and stored orientation: `to_pixels` shows it
    upright in RGB, converting only what the recipe reads.
    """
    if not data:
        raise ApiError(Problems.EMPTY_IMAGE, "the image is empty (0 bytes)", accepted=list(ACCEPTED_FORMATS))
    refused = refused_format(data)
    if refused:
        raise _unsupported(refused)
    try:
        image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError:
        raise ApiError(
            Problems.NOT_AN_IMAGE, "the data is not an image in an accepted format", accepted=list(ACCEPTED_FORMATS)
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(None, max_pixels) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise invalid_image(f"the image header cannot be read: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels((width, height), max_pixels)
    if image.format == "JPEG":
        image.draft("RGB", (RESIZE_SIZE, RESIZE_SIZE))  # decode at reduced scale: big photos cost far less
    try:
        image.load()
        image.getexif()  # parsed (and kept) here, so that a corrupt EXIF block is a 400
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels((width, height), max_pixels) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise invalid_image(f"the {image.format} image is truncated or corrupt: {exc}") from None


def declared_pixels(data: bytes) -> int:
    """Width x height from the image header alone (nothing decoded); 0 when unreadable (decoding says why)."""
    try:
        with Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS)) as image:
            width, height = image.size
            return width * height
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return 0


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> ApiError:
    what = f"{size[0]}x{size[1]} pixels" if size else "too many pixels (decompression bomb)"
    return ApiError(
        Problems.TOO_MANY_PIXELS,
        f"the image has {what}; at most {max_pixels} pixels are accepted",
        accepted={"max_pixels": max_pixels},
    )


def _crop_box(width: int, height: int) -> Box:
    """The region of a width x height picture that Resize(256) + CenterCrop(224) show, with torchvision's rounding."""
    short, long = min(width, height), max(width, height)
    resized_long = int(RESIZE_SIZE * long / short)  # torchvision truncates
    resized_w, resized_h = (RESIZE_SIZE, resized_long) if width <= height else (resized_long, RESIZE_SIZE)
    left = round((resized_w - INPUT_SIZE) / 2.0)
    top = round((resized_h - INPUT_SIZE) / 2.0)
    scale_x, scale_y = width / resized_w, height / resized_h
    return left * scale_x, top * scale_y, (left + INPUT_SIZE) * scale_x, (top + INPUT_SIZE) * scale_y


def to_pixels(image: Image.Image) -> np.ndarray:
    """torchvision's recipe (Resize(256), CenterCrop(224)) on the picture as shown: 224x224x3 uint8.

    "As shown" is upright (the EXIF orientation applied) and in 8-bit RGB (`_to_rgb`). The output equals
    resize-then-crop of that picture pixel for pixel (within one grey level of rounding), but only the centre box
    is resampled, in the stored orientation, and the 224x224 result is turned upright: the cost is the same for any
    aspect ratio (a 1x8000 strip is not blown up to 256x2048000), and no full-size copy is made.
    Pillow resamples without holding the GIL; no float conversion happens here: the runtime's graph normalises.
    """
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    transpose, sources = _ORIENTATIONS.get(orientation, (None, _UPRIGHT))
    upright_size = image.size[::-1] if orientation in _SWAPS_AXES else image.size
    shown = _resample(image, _stored_box(_crop_box(*upright_size), upright_size, image.size, sources))
    if transpose is not None:
        shown = shown.transpose(transpose)
    return np.array(shown, dtype=np.uint8)  # owned and writable: torch.from_numpy takes it as is


def _stored_box(box: Box, upright_size: tuple[int, int], stored_size: tuple[int, int], sources: Sides) -> Box:
    """A box of the upright picture -> the same pixels' box in the stored picture (its margins move side)."""
    upright_margins = (box[0], box[1], upright_size[0] - box[2], upright_size[1] - box[3])
    margins = [0.0] * 4
    for upright_side, stored_side in enumerate(sources):
        margins[stored_side] = upright_margins[upright_side]
    return margins[0], margins[1], stored_size[0] - margins[2], stored_size[1] - margins[3]


def _resample(image: Image.Image, box: Box) -> Image.Image:
    """`box` of the picture in RGB, bilinear-resampled to 224x224 exactly as Pillow's resize does it.

    L and RGB are resampled straight from the decoder's output (Pillow reads only the rows the box needs). Other
    modes are converted strip by strip (about STRIP_PIXELS each, only the columns the filter reads), each strip
    taking Pillow's horizontal pass at once; the 224-column result then takes the vertical pass. No conversion of
    the whole picture ever exists, yet the arithmetic is that of resizing one: the same pixels, weights and
    rounding (a weight may differ in its last bit, as the boxes are offset: at most one grey level, rarely).
    """
    size = (INPUT_SIZE, INPUT_SIZE)
    bilinear = Image.Resampling.BILINEAR
    if image.mode in ("RGB", "L"):  # the filter commutes with L -> RGB: each band is resampled alike
        shown = image.resize(size, bilinear, box=box, reducing_gap=None)
        return shown if shown.mode == "RGB" else shown.convert("RGB")
    left, top, right, bottom = box
    first_column, end_column = _filter_reach(left, right, image.width)
    first_row, end_row = _filter_reach(top, bottom, image.height)
    peak = _sixteen_bit_peak(image)
    across = Image.new("RGB", (INPUT_SIZE, end_row - first_row))
    rows_per_strip = max(1, STRIP_PIXELS // (end_column - first_column))
    for strip_top in range(first_row, end_row, rows_per_strip):
        strip_box = (first_column, strip_top, end_column, min(strip_top + rows_per_strip, end_row))
        strip = _to_rgb(image.crop(strip_box), peak)
        strip_across = (left - first_column, 0, right - first_column, strip.height)
        across.paste(
            strip.resize((INPUT_SIZE, strip.height), bilinear, box=strip_across, reducing_gap=None),
            (0, strip_top - first_row),
        )
    return across.resize(size, bilinear, box=(0, top - first_row, INPUT_SIZE, bottom - first_row), reducing_gap=None)


def _filter_reach(start: float, end: float, length: int) -> tuple[int, int]:
    """The pixels [first, end) that bilinear resampling of [start, end) to INPUT_SIZE reads (its support, rounded)."""
    support = max((end - start) / INPUT_SIZE, 1.0)
    return max(0, math.floor(start - support) - 1), min(length, math.ceil(end + support) + 1)


def _sixteen_bit_peak(image: Image.Image) -> int:
    """The value shown as white: 65535 for 16-bit data that uses more than 8 bits, else 255 (nothing copied)."""
    if image.mode not in _SIXTEEN_BIT_MODES:
        return 255
    return 65535 if image.getextrema()[1] > 255 else 255


def _to_rgb(image: Image.Image, peak: int = 255) -> Image.Image:
    """Any mode (CMYK, 16-bit, alpha, palette) -> 8-bit RGB, transparency composited on white, in integer maths.

    16-bit values v show as floor(v * 255 / peak), `peak` being the whole picture's (`_sixteen_bit_peak`).
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image).astype(np.int64), 0, peak)
        image = Image.fromarray((values * 255 // peak).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> 224x224x3 uint8 pixels, ready to batch."""
    return to_pixels(open_image(data, max_pixels))
