"""Image bytes -> validated RGB picture -> 224x224x3 uint8 pixels (the runtime's graph normalises them)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import ApiError, Problems

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

# Formats we refuse by name, recognised from their first bytes (whatever the file is called).
_REFUSED_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)

INPUT_SIZE = 224
RESIZE_SIZE = 256


def _unsupported(name: str) -> ApiError:
    return ApiError(
        Problems.UNSUPPORTED_IMAGE_FORMAT, f"{name} images are not accepted", accepted=list(ACCEPTED_FORMATS)
    )


def invalid_image(message: str) -> ApiError:
    return ApiError(Problems.INVALID_IMAGE, message, accepted=list(ACCEPTED_FORMATS))


def _sniff_refused(data: bytes) -> str | None:
    for signature, name in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            return name
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return "SVG"
    return None


def normalize_content_type(value: str) -> str:
    """`image/JPEG; charset=x` -> `image/jpeg`, with common aliases folded."""
    base = value.split(";", 1)[0].strip().lower()
    return CONTENT_TYPE_ALIASES.get(base, base)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode bytes into an RGB picture, or raise ApiError saying what was wrong."""
    if not data:
        raise ApiError(Problems.EMPTY_IMAGE, "the image is empty (0 bytes)", accepted=list(ACCEPTED_FORMATS))
    refused = _sniff_refused(data)
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
        image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
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


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (CMYK, 16-bit, alpha, palette) -> 8-bit RGB; transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def to_pixels(image: Image.Image) -> np.ndarray:
    """torchvision's recipe (Resize(256), CenterCrop(224)), computed as one resize of the crop's box: 224x224x3 uint8.

    The output equals resize-then-crop pixel for pixel (within one grey level of rounding), but only the centre
    box is resampled, so the cost is the same for any aspect ratio (a 1x8000 strip is not blown up to 256x2048000).
    Pillow resamples without holding the GIL; no float conversion happens here: the runtime's graph normalises.
    """
    width, height = image.size
    short, long = min(width, height), max(width, height)
    resized_long = int(RESIZE_SIZE * long / short)  # torchvision truncates
    resized_w, resized_h = (RESIZE_SIZE, resized_long) if width <= height else (resized_long, RESIZE_SIZE)
    left = round((resized_w - INPUT_SIZE) / 2.0)
    top = round((resized_h - INPUT_SIZE) / 2.0)
    scale_x, scale_y = width / resized_w, height / resized_h
    box = (left * scale_x, top * scale_y, (left + INPUT_SIZE) * scale_x, (top + INPUT_SIZE) * scale_y)
    cropped = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
    return np.array(cropped, dtype=np.uint8)  # owned and writable: torch.from_numpy takes it as is


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> 224x224x3 uint8 pixels, ready to batch."""
    return to_pixels(open_image(data, max_pixels))
