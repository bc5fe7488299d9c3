"""Message franking (Facebook, "Messenger Secret Conversations" technical whitepaper
§"Abuse reporting"; Grubbs-Lu-Ristenpart, "Message Franking via Committing AE", 2017).

Sender (client): pick a fresh 32-byte franking key ``fk``; the commitment is
``HMAC-SHA256(fk, body)`` — an HMAC, never the Poly1305 tag, which is not committing.
The end-to-end plaintext is the *franked payload* ``fk(32) || body``; the commitment
travels outside the ciphertext, next to the envelope, where the server sees it.

Server (pure functions here, called by ``server/``): on relay it stamps the
commitment with who sent it, where and when::

    stamp = key_id(u32) || HMAC-SHA256(server_key, STAMP_CONTEXT || key_id(u32)
            || commitment(32) || len(sender)(u16) || sender || len(conv)(u16) || conv
            || timestamp_ms(u64))

with UTF-8 identifiers. A :class:`FrankingKeyring` holds the current server key and
the previous ones (like ``MultiFernet``): new stamps use the current key, any kept key
verifies, a dropped key no longer does.

Recipient: :func:`open_franked` checks the commitment against the payload before
showing the body (otherwise a sender could make its messages unreportable). To
report, it hands body, ``fk``, commitment, stamp, sender, conversation and time to
the server, which calls :func:`verify_report`. All comparisons are constant time.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import constant_time_equal, hmac_sha256

__all__ = [
    "COMMITMENT_SIZE",
    "FRANKING_KEY_SIZE",
    "STAMP_CONTEXT",
    "STAMP_SIZE",
    "AbuseReport",
    "FrankedMessage",
    "FrankingKeyring",
    "ServerFrankingKey",
    "frank",
    "open_franked",
    "verify_report",
]

FRANKING_KEY_SIZE = 32
COMMITMENT_SIZE = 32
STAMP_SIZE = 4 + 32
STAMP_CONTEXT = b"Carnet franking stamp v1\x00"
_MAX_ID_BYTES = 0xFFFF


@dataclass(frozen=True)
class FrankedMessage:
    """What :func:`frank` returns.

    Attributes:
        payload: ``franking_key || body``: encrypt this end to end.
        commitment: Send this next to the envelope, in clear.
    """

    payload: bytes = field(repr=False)
    commitment: bytes


def frank(body: bytes, rng: prim.Rng = prim.default_rng) -> FrankedMessage:
    """Commit to ``body`` with a fresh franking key.

    Args:
        body: The message body.
        rng: Random source for the franking key.

    Returns:
        The payload to encrypt and the commitment.

    Raises:
        CryptoUsageError: ``rng`` returned the wrong size.
    """
    franking_key = rng(FRANKING_KEY_SIZE)
    if len(franking_key) != FRANKING_KEY_SIZE:
        raise CryptoUsageError("franking key must be 32 bytes")
    return FrankedMessage(franking_key + body, hmac_sha256(franking_key, body))


def open_franked(payload: bytes, commitment: bytes) -> tuple[bytes, bytes]:
    """Split a decrypted franked payload and check it against the commitment.

    Args:
        payload: Decrypted ``franking_key || body``.
        commitment: The commitment that came with the envelope.

    Returns:
        ``(body, franking_key)``; keep ``franking_key`` to be able to report.

    Raises:
        InvalidMessage: short payload or the commitment does not match.
    """
    if len(payload) < FRANKING_KEY_SIZE or len(commitment) != COMMITMENT_SIZE:
        raise InvalidMessage()
    franking_key, body = payload[:FRANKING_KEY_SIZE], payload[FRANKING_KEY_SIZE:]
    if not constant_time_equal(hmac_sha256(franking_key, body), commitment):
        raise InvalidMessage()
    return body, franking_key


@dataclass(frozen=True)
class ServerFrankingKey:
    """One server franking key and its uint32 id; the secret is hidden from ``repr``."""

    key_id: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.key_id <= 0xFFFFFFFF or len(self.secret) != 32:
            raise CryptoUsageError("server franking key: uint32 id and 32-byte secret")

    @classmethod
    def generate(cls, key_id: int, rng: prim.Rng = prim.default_rng) -> ServerFrankingKey:
        """Generate a new key.

        Args:
            key_id: Its id (e.g. previous id + 1).
            rng: Random source.

        Returns:
            The key.
        """
        return cls(key_id, rng(32))


def _stamp_tag(
    secret: bytes,
    key_id: int,
    commitment: bytes,
    sender_device_id: str,
    conversation_id: str,
    timestamp_ms: int,
) -> bytes:
    sender, conversation = sender_device_id.encode(), conversation_id.encode()
    if max(len(sender), len(conversation)) > _MAX_ID_BYTES or not 0 <= timestamp_ms < 2**64:
        raise CryptoUsageError("identifier too long or timestamp out of range")
    data = (
        STAMP_CONTEXT
        + struct.pack(">I", key_id)
        + commitment
        + struct.pack(">H", len(sender))
        + sender
        + struct.pack(">H", len(conversation))
        + conversation
        + struct.pack(">Q", timestamp_ms)
    )
    return hmac_sha256(secret, data)


class FrankingKeyring:
    """Server franking keys: stamps with the current one, verifies with any kept one."""

    def __init__(self, current: ServerFrankingKey, previous: Sequence[ServerFrankingKey] = ()):
        """Build a keyring.

        Args:
            current: Key used for new stamps.
            previous: Older keys still accepted for verification, newest first.

        Raises:
            CryptoUsageError: duplicate key ids.
        """
        self.current = current
        self.previous = tuple(previous)
        ids = [current.key_id, *(k.key_id for k in self.previous)]
        if len(set(ids)) != len(ids):
            raise CryptoUsageError("duplicate franking key id")
        self._by_id = {k.key_id: k for k in (current, *self.previous)}

    def __repr__(self) -> str:
        return f"<FrankingKeyring ids={list(self._by_id)}>"

    def rotated(self, new_key: ServerFrankingKey, keep: int = 1) -> FrankingKeyring:
        """Return a keyring with ``new_key`` current and the ``keep`` newest older keys.

        Args:
            new_key: The new current key.
            keep: How many previous keys stay valid for verification.

        Returns:
            The new keyring.
        """
        return FrankingKeyring(new_key, (self.current, *self.previous)[:keep])

    def stamp(
        self, commitment: bytes, sender_device_id: str, conversation_id: str, timestamp_ms: int
    ) -> bytes:
        """Stamp a commitment as the server relays the message.

        Args:
            commitment: The sender's 32-byte commitment.
            sender_device_id: Authenticated sender device id.
            conversation_id: Conversation id.
            timestamp_ms: Server time of relay, milliseconds since the epoch.

        Returns:
            The 36-byte stamp ``key_id || tag``.

        Raises:
            InvalidMessage: the commitment is not 32 bytes (it came from a client).
        """
        if len(commitment) != COMMITMENT_SIZE:
            raise InvalidMessage()
        key = self.current
        tag = _stamp_tag(
            key.secret, key.key_id, commitment, sender_device_id, conversation_id, timestamp_ms
        )
        return struct.pack(">I", key.key_id) + tag

    def verify_stamp(
        self,
        stamp: bytes,
        commitment: bytes,
        sender_device_id: str,
        conversation_id: str,
        timestamp_ms: int,
    ) -> None:
        """Check a stamp against the claimed context.

        Args:
            stamp: The 36-byte stamp.
            commitment: The commitment it should cover.
            sender_device_id: Claimed sender device.
            conversation_id: Claimed conversation.
            timestamp_ms: Claimed time.

        Raises:
            InvalidMessage: unknown or dropped key id, or any mismatch.
        """
        if len(stamp) != STAMP_SIZE or len(commitment) != COMMITMENT_SIZE:
            raise InvalidMessage()
        key_id = int.from_bytes(stamp[:4], "big")
        key = self._by_id.get(key_id)
        if key is None:
            raise InvalidMessage()
        try:
            expected = _stamp_tag(
                key.secret, key_id, commitment, sender_device_id, conversation_id, timestamp_ms
            )
        except CryptoUsageError:
            raise InvalidMessage() from None
        if not constant_time_equal(expected, stamp[4:]):
            raise InvalidMessage()


@dataclass(frozen=True)
class AbuseReport:
    """What a recipient sends to report a message."""

    body: bytes
    franking_key: bytes = field(repr=False)
    commitment: bytes
    stamp: bytes
    sender_device_id: str
    conversation_id: str
    timestamp_ms: int


def verify_report(keyring: FrankingKeyring, report: AbuseReport) -> None:
    """Check that ``report.sender_device_id`` really sent ``report.body`` there and then.

    Args:
        keyring: The server's franking keys.
        report: The report.

    Raises:
        InvalidMessage: the body does not open the commitment, or the stamp does not
            match the sender, conversation, time or any kept key.
    """
    if len(report.franking_key) != FRANKING_KEY_SIZE or len(report.commitment) != COMMITMENT_SIZE:
        raise InvalidMessage()
    opened = hmac_sha256(report.franking_key, report.body)
    if not constant_time_equal(opened, report.commitment):
        raise InvalidMessage()
    keyring.verify_stamp(
        report.stamp,
        report.commitment,
        report.sender_device_id,
        report.conversation_id,
        report.timestamp_ms,
    )
