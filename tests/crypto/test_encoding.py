"""Base64url decoding is strict: only the canonical unpadded text of some bytes decodes."""

from __future__ import annotations

import base64
import random

import pytest

from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import InvalidMessage


def _canonical(text: str) -> bytes | None:
    """The definition (RFC 4648 §5, no padding): the bytes whose encoding is ``text``."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return data if b64url_encode(data) == text else None


def _decoded(text: str) -> bytes | None:
    try:
        return b64url_decode(text)
    except InvalidMessage:
        return None


@pytest.mark.parametrize(
    "text",
    ["", "AA", "AAA", "AAAA", "_-8", "AB", "AAB", "AA==", "AA AA", "AA\nAA", "+/8", "A", "é0"],
)
def test_known_texts(text: str) -> None:
    assert _decoded(text) == _canonical(text)


def test_agrees_with_the_definition_on_random_texts() -> None:
    rng = random.Random(20261130)
    alphabet = "AQgwEIMUYcko048Zz_-+/= \né"
    valid = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        expected = _canonical(text)
        assert _decoded(text) == expected, text
        valid += expected is not None
    assert valid > 1_000  # the sample reaches both answers


def test_round_trip_and_size() -> None:
    data = bytes(range(256))
    assert b64url_decode(b64url_encode(data), size=256) == data
    with pytest.raises(InvalidMessage):
        b64url_decode(b64url_encode(data), size=255)
    with pytest.raises(InvalidMessage):
        b64url_decode(data)  # not text
