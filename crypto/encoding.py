"""Base64url helpers for the JSON-able dicts exchanged with ``server/`` and ``client/``.

Encoding: RFC 4648 §5 base64url *without* padding (docs/protocol-e2e.md §2). Decoding
is strict: padding, whitespace or characters outside the alphabet are rejected.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from crypto.errors import InvalidMessage

__all__ = ["b64url_decode", "b64url_encode", "field_bytes", "field_uint32"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
"""Last characters whose unused low bits are zero, by length modulo 4: any
other one decodes too, but is not the canonical text of those bytes."""
UINT32_MAX = 0xFFFFFFFF


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url.

    Args:
        data: Bytes to encode.

    Returns:
        The ASCII text.
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, size: int | None = None) -> bytes:
    """Decode unpadded base64url text, optionally checking the decoded size.

    Args:
        text: Untrusted value, expected to be a ``str``.
        size: Expected decoded length, or ``None`` for any.

    Returns:
        The decoded bytes.

    Raises:
        InvalidMessage: not a string, not canonical base64url, or the wrong size.
    """
    if not isinstance(text, str) or len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        raise InvalidMessage()
    tail = len(text) % 4
    if tail and text[-1] not in _CANONICAL_LAST[tail]:
        raise InvalidMessage()  # bits after the last byte must be zero (RFC 4648 §3.5)
    try:
        data = binascii.a2b_base64(
            text.encode("ascii").translate(_TO_STANDARD) + b"=" * (-len(text) % 4),
            strict_mode=True,
        )
    except (binascii.Error, ValueError):
        raise InvalidMessage() from None
    if size is not None and len(data) != size:
        raise InvalidMessage()
    return data


def field_bytes(data: Mapping[str, object], name: str, size: int | None = None) -> bytes:
    """Read a base64url field from an untrusted mapping.

    Args:
        data: The mapping.
        name: Field name.
        size: Expected decoded length, or ``None``.

    Returns:
        The decoded bytes.

    Raises:
        InvalidMessage: missing field or bad value.
    """
    if name not in data:
        raise InvalidMessage()
    return b64url_decode(data[name], size)


def field_uint32(data: Mapping[str, object], name: str) -> int:
    """Read an unsigned 32-bit integer field from an untrusted mapping.

    Args:
        data: The mapping.
        name: Field name.

    Returns:
        The integer.

    Raises:
        InvalidMessage: missing field, not an ``int`` (``bool`` excluded) or out of range.
    """
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT32_MAX:
        raise InvalidMessage()
    return value
