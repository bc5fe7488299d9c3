"""Values the SDK hands to applications: received messages, receipts, failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from client.errors import ClientError
from crypto import AbuseReport

__all__ = ["DecryptFailure", "FrankingEvidence", "Message", "SentReceipt"]


@dataclass(frozen=True)
class FrankingEvidence:
    """What a recipient keeps to report a message (docs/protocol-e2e.md §8).

    ``conversation`` is the conversation id the server stamped (``""`` for a direct
    message sent without one) and ``timestamp_ms`` the server's relay time.
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
        envelope_id: The server's envelope id (unique per device).
        message_id: The server's message id (the same for every recipient device).
        sender_person: Who wrote it.
        sender_device: From which device.
        sender_kind: ``app`` or ``email-bridge`` (then the text went through the
            school's mail system: not end to end beyond the school's server).
        from_me: Sent by another device of ours (a copy for our other devices).
        conversation: The conversation id (for a direct message, that of
            :func:`client.content.direct_conversation_id`).
        to_person: For a direct message, its addressee (useful when ``from_me``).
        body: The text.
        ts: Server time, milliseconds since the epoch.
        group: Whether it came as a sender-key group ciphertext.
        evidence: Franking evidence, to report the message.
        ciphertext: The envelope as received (for audits and tests).
    """

    envelope_id: str
    message_id: str
    sender_person: str
    sender_device: str
    sender_kind: str
    from_me: bool
    conversation: str | None
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
