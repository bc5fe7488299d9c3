"""Device session tokens: what a logged-in device shows to the REST API.

A token is issued in the ``ready`` frame after the challenge login and is
stateless: ``<device id>.<expiry ms>.<key id>.<tag>`` with
``tag = HMAC-SHA256(key, "carnet-device-session-v1" || 0x00 || device id ||
"." || expiry)`` (base64url). Any node verifies it with the shared server keys
(``storage.server_keys``, purpose ``device-session``); a revoked device is
refused because the device is looked up on every request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import InvalidMessage
from storage.server_keys import ServerKey

PURPOSE = "device-session"
_CONTEXT = b"carnet-device-session-v1\x00"
LIFETIME = timedelta(hours=12)


def _tag(key: ServerKey, device_id: str, expires_ms: int) -> bytes:
    message = _CONTEXT + f"{device_id}.{expires_ms}".encode()
    return hmac.new(key.secret, message, hashlib.sha256).digest()


class DeviceSessions:
    """Issues and checks device session tokens with a rotating set of keys.

    Args:
        keys: active keys, newest first (the first one signs).
    """

    def __init__(self, keys: Sequence[ServerKey]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._current = keys[0]
        self._by_id = {k.key_id: k for k in keys}

    def issue(self, device_id: str, now: datetime) -> tuple[str, int]:
        """A token for ``device_id`` and its expiry (ms since the epoch)."""
        expires_ms = int((now + LIFETIME).timestamp() * 1000)
        tag = b64url_encode(_tag(self._current, device_id, expires_ms))
        return f"{device_id}.{expires_ms}.{self._current.key_id}.{tag}", expires_ms

    def check(self, token: str, now: datetime) -> str | None:
        """The device id the token was issued to, or None if forged or expired."""
        parts = token.split(".")
        if len(parts) != 4 or len(token) > 256:
            return None
        device_id, expires, key_id, tag = parts
        if not (expires.isdigit() and key_id.isdigit()):
            return None
        key = self._by_id.get(int(key_id))
        try:
            given = b64url_decode(tag, 32)
        except InvalidMessage:
            return None
        if key is None or not hmac.compare_digest(given, _tag(key, device_id, int(expires))):
            return None
        if int(expires) <= now.timestamp() * 1000:
            return None
        return device_id
