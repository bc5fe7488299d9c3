"""Errors of the SMTP bridge.

Exception tree::

    BridgeError              root of every bridge error
    ├── BadBridgeKey         CARNET_BRIDGE_KEY is malformed (our configuration)
    ├── SealBroken           a sealed record does not open (key lost, tampering)
    ├── TokenRefused         a link, reply-address or form token is forged,
    │                        expired or used (the peer's fault); ``reason`` is
    │                        safe to show
    ├── ReplyRefused         a reply cannot be posted (not allowed, empty,
    │                        wrong sender); ``reason`` is safe to show
    └── StateConflict        another node changed the device state meanwhile (retry)
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of the bridge's errors."""


class BadBridgeKey(BridgeError):
    """The configured bridge key is malformed."""


class SealBroken(BridgeError):
    """A sealed record does not open."""


class TokenRefused(BridgeError):
    """A token is forged, expired or already used; the message is safe to show."""


class ReplyRefused(BridgeError):
    """A reply cannot be posted; the message is safe to show."""


class StateConflict(BridgeError):
    """The bridge device's state changed under us; start again."""
