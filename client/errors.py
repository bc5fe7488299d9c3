"""Exceptions raised by the client SDK.

Every exception raised on purpose by :mod:`client` derives from :class:`ClientError`,
so an application needs a single ``except`` clause. The tree separates what the
server told us from what went wrong locally (as ``websockets.exceptions``)::

    ClientError                  root
    ├── KeystoreError            the keystore file cannot be used
    │   └── WrongPassphrase      the passphrase does not open it (or it was tampered)
    ├── ApiError                 the server answered an HTTP request with an error
    │                            (``status``, ``code``, ``message``, ``retry_after``)
    ├── SendRefused              the server answered a ``send`` with an ``error`` frame
    ├── ConnectionFailed         no usable connection (login refused, superseded,
    │                            reconnect attempts exhausted)
    └── NoDevices                nobody to encrypt for (the person has no device with keys)

Crypto failures of received messages never raise here: they are recorded in
:attr:`client.Client.failures` and the envelope is acknowledged (docs/sdk.md).
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ClientError",
    "ConnectionFailed",
    "KeystoreError",
    "NoDevices",
    "SendRefused",
    "WrongPassphrase",
]


class ClientError(Exception):
    """Root of every exception the SDK raises on purpose."""


class KeystoreError(ClientError):
    """The keystore file is missing, malformed or cannot be written."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not decrypt the keystore (or the file was modified)."""

    def __init__(self) -> None:
        super().__init__("wrong passphrase, or the keystore file was modified")


class ApiError(ClientError):
    """An HTTP request got an error answer (``{"error": {"code", "message"}}``).

    Attributes:
        status: HTTP status.
        code: The documented error code (docs/protocol.md, "Errors").
        message: The server's short explanation.
        retry_after: Seconds to wait before retrying, for ``rate_limited``.
    """

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class SendRefused(ClientError):
    """The server refused a ``send`` (``error`` frame naming its client message id).

    Attributes:
        code: The error code.
        message: The server's explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionFailed(ClientError):
    """The WebSocket could not be (re)established or was closed for good."""


class NoDevices(ClientError):
    """The recipients have no device we can encrypt for."""
