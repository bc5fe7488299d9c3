"""Everything a device remembers between runs, as one JSON-able value (pure).

This is the plaintext of the keystore (:mod:`client.keystore`)::

    {"version": 1, "server_url", "device_id", "person_id",
     "keys": DeviceKeys.to_dict(), "prekeys_published": bool,
     "book": SessionBook.to_dict(), "groups": GroupBook.to_dict(),
     "seen": [envelope ids, oldest first, at most MAX_SEEN],
     "pending": {client_msg_id: send frame JSON}, "failures": int,
     "conversations": {id: ConversationInfo.to_dict()},
     "received": {conversation id: highest seq processed}}

``seen`` makes at-least-once delivery exactly-once for the application, across
restarts (envelope ids are ``<conversation>:<seq>``); ``received`` is where a
``sync`` resumes; ``pending`` holds sends not yet confirmed by a ``sent`` frame,
resent with the same client message id after a reconnect or a restart.
``conversations`` and ``received`` are absent from keystores written before
conversations existed and read as empty.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from client.conversations import ConversationInfo
from client.errors import ClientError, KeystoreError
from client.groups import GroupBook
from client.sessions import SessionBook
from crypto import DeviceKeys, InvalidMessage

__all__ = ["MAX_SEEN", "DeviceState"]

MAX_SEEN = 5000
STATE_VERSION = 1


@dataclass
class DeviceState:
    """The mutable state of one enrolled device."""

    server_url: str
    device_id: str
    person_id: str
    keys: DeviceKeys
    prekeys_published: bool = False
    book: SessionBook = field(default_factory=SessionBook)
    groups: GroupBook = field(default_factory=GroupBook)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    pending: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    conversations: dict[str, ConversationInfo] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)

    def mark_seen(self, envelope_id: str, conversation: str = "", seq: int = 0) -> None:
        """Remember a processed envelope (bounded, oldest forgotten first).

        Args:
            envelope_id: The envelope id.
            conversation: Its conversation (to move ``received`` forward).
            seq: Its seq.
        """
        self.seen[envelope_id] = None
        while len(self.seen) > MAX_SEEN:
            self.seen.popitem(last=False)
        if conversation:
            self.received[conversation] = max(self.received.get(conversation, 0), seq)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (secret).

        Returns:
            The dict.
        """
        return {
            "version": STATE_VERSION,
            "server_url": self.server_url,
            "device_id": self.device_id,
            "person_id": self.person_id,
            "keys": self.keys.to_dict(),
            "prekeys_published": self.prekeys_published,
            "book": self.book.to_dict(),
            "groups": self.groups.to_dict(),
            "seen": list(self.seen),
            "pending": dict(self.pending),
            "failures": self.failures,
            "conversations": {c: info.to_dict() for c, info in self.conversations.items()},
            "received": dict(self.received),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceState:
        """Restore from :meth:`to_dict`.

        Args:
            data: The decrypted keystore content.

        Returns:
            The state.

        Raises:
            KeystoreError: malformed or from an unknown version.
        """
        try:
            if data["version"] != STATE_VERSION:
                raise KeystoreError("unsupported keystore state version")
            return cls(
                server_url=str(data["server_url"]),
                device_id=str(data["device_id"]),
                person_id=str(data["person_id"]),
                keys=DeviceKeys.from_dict(data["keys"]),
                prekeys_published=bool(data["prekeys_published"]),
                book=SessionBook.from_dict(data["book"]),
                groups=GroupBook.from_dict(data["groups"]),
                seen=OrderedDict((str(e), None) for e in data["seen"]),
                pending={str(k): str(v) for k, v in data["pending"].items()},
                failures=int(data["failures"]),
                conversations={
                    str(c): ConversationInfo.from_json(info)
                    for c, info in data.get("conversations", {}).items()
                },
                received={str(c): int(s) for c, s in data.get("received", {}).items()},
            )
        except KeystoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, InvalidMessage, ClientError):
            raise KeystoreError("the keystore content is malformed") from None
