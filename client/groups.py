"""Sender key bookkeeping per conversation (pure; docs/protocol-e2e.md §7).

Rules:

1. We hold at most one :class:`crypto.GroupSender` per conversation, together with
   the set of member devices it was distributed to.
2. Sending to a member set different from that one (anyone added or removed)
   rotates: a brand-new sender key, distributed to the current members only. A
   removed device holds only the old chain and cannot derive the new one.
3. A membership change (an ``event`` frame) rotates at the next send even if the
   device set happens to be the same (:meth:`GroupBook.rotate`); leaving a
   conversation forgets its keys (:meth:`GroupBook.forget`).
4. Receiving keeps one :class:`crypto.GroupReceiver` per (conversation, sender
   device), fed by distributions that arrived inside pairwise sessions.
5. Failures change nothing and raise :class:`crypto.InvalidMessage`.
"""

from __future__ import annotations

from typing import Any

from crypto import GroupReceiver, GroupSender, InvalidMessage, parse_envelope
from crypto.envelope import GroupMessage

__all__ = ["GroupBook"]


class GroupBook:
    """Our sender keys and the sender keys of others, per conversation."""

    def __init__(self) -> None:
        """Start empty."""
        self._senders: dict[str, tuple[GroupSender, frozenset[str]]] = {}
        self._receivers: dict[str, dict[str, GroupReceiver]] = {}

    def __repr__(self) -> str:
        return f"<GroupBook senders={len(self._senders)} receivers={len(self._receivers)}>"

    def sender(self, conversation: str, members: frozenset[str]) -> tuple[GroupSender, bool]:
        """Our sender key for a conversation and its members (rules 1, 2).

        Args:
            conversation: Conversation id.
            members: The member devices (ours excluded) this message goes to.

        Returns:
            The sender and whether it is new (then distribute it to ``members``
            before sending with it).
        """
        current = self._senders.get(conversation)
        if current is not None and current[1] == members:
            return current[0], False
        sender = GroupSender.generate()
        self._senders[conversation] = (sender, members)
        return sender, True

    def rotate(self, conversation: str) -> None:
        """Retire our sender key: the next :meth:`sender` call makes a new one (rule 3).

        Args:
            conversation: Conversation id.
        """
        self._senders.pop(conversation, None)

    def forget(self, conversation: str) -> None:
        """Drop every key of a conversation we are no longer in (rule 3).

        Args:
            conversation: Conversation id.
        """
        self._senders.pop(conversation, None)
        self._receivers.pop(conversation, None)

    def members(self, conversation: str) -> frozenset[str]:
        """The devices our current sender key was distributed to.

        Args:
            conversation: Conversation id.

        Returns:
            The device ids (empty if we never sent there).
        """
        current = self._senders.get(conversation)
        return current[1] if current is not None else frozenset()

    def receiver(self, conversation: str, sender_device: str) -> GroupReceiver | None:
        """The receiver state for one sender device in a conversation.

        Args:
            conversation: Conversation id.
            sender_device: The sender's device id.

        Returns:
            The receiver, or ``None``.
        """
        return self._receivers.get(conversation, {}).get(sender_device)

    def add_distribution(self, conversation: str, sender_device: str, distribution: bytes) -> int:
        """Install a sender key received pairwise from ``sender_device`` (rule 3).

        Args:
            conversation: The conversation named inside the encrypted content.
            sender_device: The pairwise session's peer device.
            distribution: The distribution envelope.

        Returns:
            The key id.

        Raises:
            InvalidMessage: not a distribution.
        """
        receivers = self._receivers.setdefault(conversation, {})
        receiver = receivers.get(sender_device) or GroupReceiver()
        key_id = receiver.add_distribution(distribution)
        receivers[sender_device] = receiver
        return key_id

    def knows_key(self, conversation: str, sender_device: str, envelope: bytes) -> bool:
        """Whether we hold the sender key a group message was encrypted with.

        Args:
            conversation: Conversation id.
            sender_device: Sender device id.
            envelope: The group message (untrusted).

        Returns:
            False for an unknown key id (its distribution may still be on its way)
            or an envelope that is not a group message.
        """
        receiver = self.receiver(conversation, sender_device)
        try:
            parsed = parse_envelope(envelope)
        except InvalidMessage:
            return False
        return (
            receiver is not None
            and isinstance(parsed, GroupMessage)
            and parsed.key_id in receiver.key_ids
        )

    def decrypt(self, conversation: str, sender_device: str, envelope: bytes) -> bytes:
        """Decrypt a group message.

        Args:
            conversation: Conversation id (from the deliver frame).
            sender_device: Sender device id.
            envelope: The group message (untrusted).

        Returns:
            The plaintext (franked payload).

        Raises:
            InvalidMessage: no key, bad signature, replay, or authentication failure.
        """
        receiver = self.receiver(conversation, sender_device)
        if receiver is None:
            raise InvalidMessage()
        return receiver.decrypt(envelope)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (secret: chain keys).

        Returns:
            The dict.
        """
        return {
            "senders": {
                c: {"sender": s.to_dict(), "members": sorted(m)}
                for c, (s, m) in self._senders.items()
            },
            "receivers": {
                c: {d: r.to_dict() for d, r in by_device.items()}
                for c, by_device in self._receivers.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupBook:
        """Restore from :meth:`to_dict`.

        Args:
            data: The saved dict.

        Returns:
            The book.

        Raises:
            InvalidMessage: malformed data.
        """
        book = cls()
        try:
            for conversation, saved in data["senders"].items():
                book._senders[conversation] = (
                    GroupSender.from_dict(saved["sender"]),
                    frozenset(str(m) for m in saved["members"]),
                )
            for conversation, by_device in data["receivers"].items():
                book._receivers[conversation] = {
                    str(d): GroupReceiver.from_dict(r) for d, r in by_device.items()
                }
        except (KeyError, TypeError, AttributeError):
            raise InvalidMessage() from None
        return book
