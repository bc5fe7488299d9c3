"""Error codes of the protocol and the exception that carries them.

Exception tree::

    ProtocolError            a frame or request broke the protocol (the peer's fault)

Every code a client can receive is listed in :class:`ErrorCode` and documented
in docs/protocol.md ("Errors"): what it means and what the client should do.
Messages never contain internal details (stack traces, database errors).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code the server sends, in ``error`` frames and JSON bodies."""

    BAD_FRAME = "bad_frame"
    """The frame is not valid JSON or does not match any frame schema."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """The frame's ``v`` is not a protocol version this server speaks."""
    NOT_AUTHENTICATED = "not_authenticated"
    """A frame other than ``auth`` arrived before the challenge was answered."""
    AUTH_FAILED = "auth_failed"
    """Unknown or revoked device, or a bad signature over the challenge."""
    UNKNOWN_DEVICE = "unknown_device"
    """An envelope is addressed to a device that does not exist."""
    UNKNOWN_CONVERSATION = "unknown_conversation"
    """The conversation does not exist, or the sender is not one of its members."""
    NOT_A_MEMBER = "not_a_member"
    """A recipient device does not belong to a member of the conversation."""
    NOT_ALLOWED = "not_allowed"
    """The action is not allowed here (e.g. replying in a one-way announcement); a
    moderation refusal carries its ``reason`` code (docs/moderation.md, "Reason codes")."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The message could not be stored durably; retry with the same client id."""
    RATE_LIMITED = "rate_limited"
    """Too many requests; retry after ``retry_after`` seconds."""
    INVALID_REQUEST = "invalid_request"
    """An HTTP request body or parameter failed validation."""
    INVALID_CODE = "invalid_code"
    """The enrolment code is unknown, used, expired or locked."""
    UNAUTHORIZED = "unauthorized"
    """Missing or invalid bearer token."""
    FORBIDDEN = "forbidden"
    """The token is valid but not allowed to do this."""
    NOT_FOUND = "not_found"
    """The resource does not exist (or is not visible to the caller)."""
    CONFLICT = "conflict"
    """The request conflicts with existing data."""
    INTERNAL = "internal"
    """An unexpected server fault; the message never says more."""


class ProtocolError(Exception):
    """A frame broke the protocol; ``code`` and ``message`` go to the peer as is.

    Args:
        code: the documented error code.
        message: a short human-readable explanation without internal details.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
