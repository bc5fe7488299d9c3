"""Conversations as the SDK remembers them (pure; docs/sdk.md, "Conversations").

The server owns membership (docs/protocol.md, "Conversations"); the SDK keeps a
copy per conversation, filled from REST answers and kept current by membership
events, which arrive in seq order with the messages.

Rules:

1. A direct conversation is encrypted pairwise for every device of both members
   (ours included); every other kind (group, class, announcement) with our
   sender key, one ciphertext for every member device.
2. A membership event replaces the member list and rotates our sender key for
   the conversation: the next group send makes a new key and distributes it to
   the current members only, so a removed member cannot read what follows
   (docs/protocol-e2e.md §7).
3. An event that removes us (``removed``/``left`` naming us) ends the
   conversation for this device: its copy and sender keys are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from client.errors import ClientError

__all__ = ["DIRECT", "ConversationInfo"]

DIRECT = "direct"
KINDS = frozenset({DIRECT, "group", "class", "announcement"})


@dataclass(frozen=True)
class ConversationInfo:
    """A conversation: kind, members and owners (person ids), head seq.

    Attributes:
        id: The conversation id.
        kind: ``direct``, ``group``, ``class`` or ``announcement``.
        title: Its title (empty for direct conversations).
        members: Person ids of the members.
        owners: Person ids who may add and remove members (and write in an
            announcement).
        seq: The last seq the server gave in it (when fetched).
        acked_seq: The last seq this device acknowledged (when listed).
        unread: ``seq - acked_seq`` (when listed).
    """

    id: str
    kind: str
    title: str
    members: tuple[str, ...]
    owners: tuple[str, ...]
    seq: int = 0
    acked_seq: int | None = None
    unread: int | None = None

    @property
    def pairwise(self) -> bool:
        """True for a direct conversation (rule 1)."""
        return self.kind == DIRECT

    def other(self, me: str) -> str | None:
        """The other member of a direct conversation.

        Args:
            me: Our person id.

        Returns:
            Their person id, or ``None`` if this is not a direct conversation.
        """
        if not self.pairwise:
            return None
        return next((m for m in self.members if m != me), None)

    def with_members(self, members: tuple[str, ...], seq: int) -> ConversationInfo:
        """The conversation after a membership event (rule 2).

        Args:
            members: The members after the change.
            seq: The event's seq.

        Returns:
            The updated copy (owners who left are dropped).
        """
        owners = tuple(o for o in self.owners if o in members)
        return replace(self, members=members, owners=owners, seq=max(self.seq, seq))

    @classmethod
    def from_json(cls, body: Any) -> ConversationInfo:
        """Read a server answer (``POST/GET /v1/conversations...``).

        Args:
            body: The decoded JSON object.

        Returns:
            The conversation.

        Raises:
            ClientError: malformed answer.
        """
        try:
            kind = str(body["kind"])
            if kind not in KINDS:
                raise ValueError(kind)
            acked = body.get("acked_seq")
            unread = body.get("unread")
            return cls(
                id=str(body["id"]),
                kind=kind,
                title=str(body.get("title") or ""),
                members=tuple(str(m) for m in body["members"]),
                owners=tuple(str(o) for o in body.get("owners", ())),
                seq=int(body.get("seq", 0)),
                acked_seq=None if acked is None else int(acked),
                unread=None if unread is None else int(unread),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ClientError("malformed conversation") from None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form kept in the keystore.

        Returns:
            The dict.
        """
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "members": list(self.members),
            "owners": list(self.owners),
            "seq": self.seq,
        }
