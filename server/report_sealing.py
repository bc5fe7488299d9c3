"""Reported message content, sealed at rest (docs/security.md, "Reports").

A report is the one place where message content reaches the server: the
recipient chooses to disclose it so that the school's moderators can act
(issue "Moderation", reports with proof). It is never stored in clear: the
body is sealed with a server key (XSalsa20-Poly1305, ``nacl.secret.SecretBox``,
purpose ``report-content`` in ``server_keys``), opened only to answer a
moderator, and deleted with the report by retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from storage.server_keys import ServerKey

PURPOSE = "report-content"


class ReportSeal:
    """Seals with the newest key; opens with any active one (rotation)."""

    def __init__(self, keys: Sequence[ServerKey]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._current = keys[0]
        self._boxes = {k.key_id: SecretBox(k.secret) for k in keys}

    def seal(self, body: bytes) -> dict[str, Any]:
        box = self._boxes[self._current.key_id]
        return {"key_id": self._current.key_id, "sealed": bytes(box.encrypt(body))}

    def open(self, stored: Any) -> bytes | None:
        """The body, or None if its key was retired (the content is then gone)."""
        if not isinstance(stored, dict):
            return None
        box = self._boxes.get(stored.get("key_id", -1))
        if box is None:
            return None
        try:
            return bytes(box.decrypt(bytes(stored["sealed"])))
        except (CryptoError, KeyError, TypeError):
            return None
