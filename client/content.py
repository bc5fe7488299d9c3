"""What the SDK puts inside end-to-end ciphertexts (docs/sdk.md, "Content").

Every pairwise and group plaintext is a *franked payload* (docs/protocol-e2e.md §8):
``franking_key (32) || body``. The body is canonical UTF-8 JSON, one object with a
``t`` (type) member:

* ``{"t": "text", "text": str, "to": person_id | null}``: a message. ``to`` is set on
  direct messages so the sender's other devices know who it went to.
* ``{"t": "sender_key", "conversation": str, "distribution": b64url}``: a sender key
  distribution (§6.5) for that conversation; only ever sent pairwise, in that
  same conversation (before the group messages that use it). The conversation
  is inside the ciphertext too, so the server cannot move a key to another
  conversation.

Pure: no I/O. Unknown types and malformed bodies raise :class:`crypto.InvalidMessage`
(the same opaque error as any other undecryptable input).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from crypto import InvalidMessage
from crypto.encoding import b64url_decode, b64url_encode

__all__ = [
    "SenderKeyContent",
    "TextContent",
    "decode_body",
    "direct_conversation_id",
    "encode_body",
]


def direct_conversation_id(person_a: str, person_b: str) -> str:
    """The id of the one direct conversation of two people (order does not matter).

    ``"c_" + base64url(BLAKE2b-128("direct" 0x1F min(a, b) 0x1F max(a, b)))``, the
    derivation the server uses (``storage.conversations.direct_id``): the id that
    ``POST /v1/conversations {"kind": "direct"}`` answers for the pair.

    Args:
        person_a: One person id.
        person_b: The other.

    Returns:
        The conversation id.
    """
    parts = "\x1f".join(("direct", *sorted((person_a, person_b))))
    digest = hashlib.blake2b(parts.encode(), digest_size=16).digest()
    return "c_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class TextContent:
    """A text message; ``to`` is the addressee person of a direct message."""

    text: str
    to: str | None = None


@dataclass(frozen=True)
class SenderKeyContent:
    """A sender key distribution for ``conversation``."""

    conversation: str
    distribution: bytes


Content = TextContent | SenderKeyContent


def encode_body(content: Content) -> bytes:
    """Encode content as the canonical JSON body.

    Args:
        content: What to send.

    Returns:
        UTF-8 JSON bytes.
    """
    if isinstance(content, TextContent):
        data: dict[str, object] = {"t": "text", "text": content.text, "to": content.to}
    else:
        data = {
            "t": "sender_key",
            "conversation": content.conversation,
            "distribution": b64url_encode(content.distribution),
        }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_body(body: bytes) -> Content:
    """Decode a body received end to end (untrusted).

    Args:
        body: The body from :func:`crypto.open_franked`.

    Returns:
        The content.

    Raises:
        InvalidMessage: not a body this SDK understands.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidMessage() from None
    if not isinstance(data, dict):
        raise InvalidMessage()
    kind = data.get("t")
    if kind == "text":
        text, to = data.get("text"), data.get("to")
        if not isinstance(text, str) or not (to is None or isinstance(to, str)):
            raise InvalidMessage()
        return TextContent(text, to)
    if kind == "sender_key":
        conversation = data.get("conversation")
        if not isinstance(conversation, str):
            raise InvalidMessage()
        return SenderKeyContent(conversation, b64url_decode(data.get("distribution")))
    raise InvalidMessage()
