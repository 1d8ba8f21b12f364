"""Image formats known by their first bytes (app/signatures.py), checked against what Pillow writes."""

from __future__ import annotations

import pytest

from app.imaging import ACCEPTED_FORMATS
from app.signatures import ACCEPTED_SIGNATURES, accepted_format, looks_like_an_image, refused_format
from tests.helpers import encode, photo


def test_every_accepted_format_has_a_signature_and_no_other() -> None:
    assert {name for name, _ in ACCEPTED_SIGNATURES} == set(ACCEPTED_FORMATS)


@pytest.mark.parametrize("fmt", sorted(ACCEPTED_FORMATS))
def test_what_pillow_writes_is_known_by_its_bytes(fmt: str) -> None:
    data = encode(photo("coffee", (64, 48)), fmt)
    assert accepted_format(data) == fmt
    assert refused_format(data) is None
    assert looks_like_an_image(data)


def test_gif87a_is_a_gif_too() -> None:
    assert accepted_format(b"GIF87a" + b"\0" * 16) == "GIF"


@pytest.mark.parametrize(("fmt", "name"), [("TIFF", "TIFF"), ("PDF", "PDF"), ("EPS", "EPS"), ("ICO", "ICO")])
def test_refused_formats_look_like_images_so_that_decoding_names_them(fmt: str, name: str) -> None:
    data = encode(photo("coffee", (64, 48)), fmt)
    assert refused_format(data) == name
    assert accepted_format(data) is None and looks_like_an_image(data)


@pytest.mark.parametrize("data", [b"", b"heads=imagenet&top_k=3", b"RIFF\0\0\0\0WAVE", b'{"instances": []}'])
def test_other_bytes_are_not_images(data: bytes) -> None:
    assert not looks_like_an_image(data)
