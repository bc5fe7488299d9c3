"""Values the SDK hands to applications: messages, receipts, failures, events."""

from __future__ import annotations

from dataclasses import dataclass, field

from client.errors import ClientError
from crypto import AbuseReport

__all__ = [
    "DecryptFailure",
    "Event",
    "ExpiredMessages",
    "FrankingEvidence",
    "MembershipChange",
    "Message",
    "SentReceipt",
]


@dataclass(frozen=True)
class FrankingEvidence:
    """What a recipient keeps to report a message (docs/protocol-e2e.md §8).

    ``conversation`` is the conversation id the server stamped and ``timestamp_ms``
    the server's relay time.
    """

    body: bytes
    franking_key: bytes = field(repr=False)
    commitment: bytes
    stamp: bytes | None
    sender_device: str
    conversation: str
    timestamp_ms: int

    def report(self) -> AbuseReport:
        """Build the abuse report the server verifies with :func:`crypto.verify_report`.

        Returns:
            The report.

        Raises:
            ClientError: the server did not stamp this message.
        """
        if self.stamp is None:
            raise ClientError("this message carries no server stamp; it cannot be reported")
        return AbuseReport(
            body=self.body,
            franking_key=self.franking_key,
            commitment=self.commitment,
            stamp=self.stamp,
            sender_device_id=self.sender_device,
            conversation_id=self.conversation,
            timestamp_ms=self.timestamp_ms,
        )


@dataclass(frozen=True)
class Message:
    """One decrypted text message.

    Attributes:
        envelope_id: The server's envelope id, ``<conversation>:<seq>``.
        message_id: The server's message id (the same for every recipient device).
        conversation: The conversation id.
        seq: Its place in the conversation (increasing; gaps are possible).
        sender_person: Who wrote it.
        sender_device: From which device.
        sender_kind: ``app`` or ``email-bridge`` (then the text went through the
            school's mail system: not end to end beyond the school's server).
        from_me: Sent by another device of ours (a copy for our other devices).
        to_person: For a direct message, its addressee (useful when ``from_me``).
        body: The text.
        ts: Server time, milliseconds since the epoch.
        group: Whether it came as a sender-key group ciphertext.
        evidence: Franking evidence, to report the message.
        ciphertext: The envelope as received (for audits and tests).
    """

    envelope_id: str
    message_id: str
    conversation: str
    seq: int
    sender_person: str
    sender_device: str
    sender_kind: str
    from_me: bool
    to_person: str | None
    body: str
    ts: int
    group: bool
    evidence: FrankingEvidence = field(repr=False)
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class SentReceipt:
    """The server's confirmation that a send is stored durably."""

    client_msg_id: str
    message_id: str
    conversation: str
    seq: int
    ts: int
    stamp: bytes | None
    devices: tuple[str, ...]
    """The devices it was encrypted for."""
    email_bridge: bool = False
    """Some recipient device is an email bridge: warn the user (not end to end)."""


@dataclass(frozen=True)
class DecryptFailure:
    """An envelope we could not decrypt; it was acknowledged so it is not redelivered."""

    envelope_id: str
    sender_device: str
    sender_person: str
    ts: int


@dataclass(frozen=True)
class MembershipChange:
    """Someone joined or left a conversation (an ``event`` frame).

    Our sender key for the conversation is already marked for rotation when the
    application sees this (docs/sdk.md, "Conversations").

    Attributes:
        conversation: The conversation id.
        seq: The event's place in the conversation.
        action: ``created``, ``added``, ``removed``, ``left`` or ``synced``.
        persons: Who was added, removed or left (every member for ``created``).
        by: Who did it (``None``: the server, e.g. a directory sync).
        members: The members after the change.
        ts: Server time, milliseconds since the epoch.
    """

    conversation: str
    seq: int
    action: str
    persons: tuple[str, ...]
    by: str | None
    members: tuple[str, ...]
    ts: int


@dataclass(frozen=True)
class ExpiredMessages:
    """Messages ``from_seq``..``to_seq`` of a conversation expired before this
    device received them (the undelivered lifetime is over): tell the user."""

    conversation: str
    from_seq: int
    to_seq: int


Event = MembershipChange | ExpiredMessages
"""What :meth:`client.Client.events` yields."""
