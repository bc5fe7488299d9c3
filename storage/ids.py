"""Identifiers: random, URL-safe, prefixed by what they name (``p_``, ``d_``, ``m_``)."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A fresh random identifier such as ``d_3q2-7wZ...`` (96 random bits by default)."""
    token = base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode()
    return f"{prefix}_{token}"


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic identifier for the tuple ``parts`` (BLAKE2b-128).

    Used where a retry must land on the same document, e.g. a message id derived
    from the sender device and the client's message id (idempotent sends).
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()
    return f"{prefix}_{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, enrolment codes), hex.

    A fast hash is right here: the secrets carry 60+ random bits, so there is no
    dictionary to attack, and lookups must stay cheap.
    """
    return hashlib.sha256(secret.encode()).hexdigest()
