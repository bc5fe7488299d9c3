"""Exceptions raised by :mod:`crypto`.

Every exception raised on purpose by this package derives from :class:`CryptoError`,
so ``server/`` and ``client/`` need a single ``except`` clause. The tree follows the
split between the peer's mistakes and ours (h11's ``RemoteProtocolError`` /
``LocalProtocolError``)::

    CryptoError                  root; carries ``status_hint``
    ├── InvalidMessage           anything received was not acceptable (opaque)
    └── CryptoUsageError         we called the library wrongly (a bug on our side)

:class:`InvalidMessage` is deliberately opaque, like Fernet's ``InvalidToken``: a
truncated envelope, an unknown version, a bad MAC, a forged signature, a replay, a
skipped-key limit, a low-order X25519 point, a tampered franking report all raise the
same exception with the same message, so nothing about *why* can leak to a peer or
become an oracle. :class:`CryptoUsageError` carries a descriptive message; it is
never caused by peer input and must never be shown to a peer either.
"""

from __future__ import annotations

__all__ = ["CryptoError", "CryptoUsageError", "InvalidMessage"]

_OPAQUE_MESSAGE = "invalid message"


class CryptoError(Exception):
    """Root of every exception raised by :mod:`crypto`.

    Attributes:
        status_hint: HTTP-like status that ``server/`` may map to a response or a
            close code (400: the peer sent something bad; 500: our bug).
    """

    status_hint: int = 400


class InvalidMessage(CryptoError):
    """A received envelope, key, signature, report or bundle was rejected.

    The message is always the same; do not add details when raising it.
    """

    status_hint = 400

    def __init__(self) -> None:
        super().__init__(_OPAQUE_MESSAGE)


class CryptoUsageError(CryptoError):
    """The library was used wrongly by local code (wrong size, illegal state move)."""

    status_hint = 500
