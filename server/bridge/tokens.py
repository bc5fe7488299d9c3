"""Signed tokens of the bridge: reading links, reply addresses and form (CSRF) tokens.

Sans-I/O (docs/email-bridge.md, "Tokens"). A token's text is ``<id>-<tag>``:
``id`` is 80 random bits naming a ``bridge_tokens`` record (device,
conversation, expiry), ``tag`` an 80-bit HMAC-SHA256 of the purpose and the id
under the bridge key. Both are lowercase base32, so a token survives mail
systems that lowercase addresses, and a reply address ``r-<token>@<domain>``
stays far under the 64 characters of an RFC 5321 local part. A forged token
fails the tag before the database is asked; an expired one fails on the
record's ``expires_at`` against the injected clock.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from server.bridge.errors import TokenRefused
from server.bridge.keyring import BridgeKeyring

ID_BYTES = 10
TAG_BYTES = 10
LINK = "link"
REPLY = "reply"
FORM = "form"
_TOKEN = re.compile(r"^([a-z2-7]{16})-([a-z2-7]{16})$")
REPLY_PREFIX = "r-"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise TokenRefused("this link is not valid") from None


def _signed(purpose: str, token_id: str, extra: str = "") -> bytes:
    return f"carnet-bridge-token\x00{purpose}\x00{token_id}\x00{extra}".encode()


def new_token(keyring: BridgeKeyring, purpose: str) -> tuple[str, str]:
    """A fresh token: ``(id, text)``; store a record under ``id``."""
    token_id = _b32(secrets.token_bytes(ID_BYTES))
    return token_id, f"{token_id}-{_b32(keyring.tag(_signed(purpose, token_id), TAG_BYTES))}"


def check_token(keyring: BridgeKeyring, purpose: str, text: str) -> str:
    """The id of a token whose tag verifies.

    Raises:
        TokenRefused: malformed or forged.
    """
    match = _TOKEN.fullmatch(text.strip().lower())
    if match is None:
        raise TokenRefused("this link is not valid")
    token_id, tag = match.groups()
    if not keyring.verify(_signed(purpose, token_id), _unb32(tag)):
        raise TokenRefused("this link is not valid")
    return token_id


def form_token(keyring: BridgeKeyring, link_id: str) -> tuple[str, str]:
    """A nonce and its tag for one rendered form of the page behind ``link_id`` (CSRF)."""
    nonce = _b32(secrets.token_bytes(ID_BYTES))
    return nonce, _b32(keyring.tag(_signed(FORM, link_id, nonce), TAG_BYTES))


def check_form(keyring: BridgeKeyring, link_id: str, nonce: str, tag: str) -> None:
    """Raises TokenRefused unless ``tag`` is this page's tag for ``nonce``."""
    if not re.fullmatch(r"[a-z2-7]{16}", nonce) or not re.fullmatch(r"[a-z2-7]{16}", tag):
        raise TokenRefused("the form expired; reload the page")
    if not keyring.verify(_signed(FORM, link_id, nonce), _unb32(tag)):
        raise TokenRefused("the form expired; reload the page")


def reply_address(token_text: str, domain: str) -> str:
    return f"{REPLY_PREFIX}{token_text}@{domain}"


def token_of_address(address: str, domain: str) -> str:
    """The token text of a reply address of our domain.

    Raises:
        TokenRefused: not one of our reply addresses.
    """
    local, _, host = address.strip().strip("<>").rpartition("@")
    if host.lower() != domain.lower() or not local.lower().startswith(REPLY_PREFIX):
        raise TokenRefused("no such reply address")
    return local[len(REPLY_PREFIX) :].lower()
