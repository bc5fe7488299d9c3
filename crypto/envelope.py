"""Binary envelopes, version 1 (docs/protocol-e2e.md §6 gives the byte layout).

Every envelope starts with a version byte (:data:`VERSION` = 0x01) and a type byte.
Integers are unsigned big-endian; keys and signatures have fixed sizes; the one
variable field, the AEAD ciphertext, is preceded by its ``uint32`` length and is at
least 16 bytes (the Poly1305 tag) and at most :data:`MAX_CIPHERTEXT_SIZE`. The input
must be consumed exactly: truncated input, trailing bytes, an unknown version or
type, a bad flag or an oversized length all raise the opaque
:class:`~crypto.errors.InvalidMessage`.

Types: 0x01 prekey message (X3DH initial message, X3DH spec §3.3, wrapping a ratchet
message), 0x02 ratchet message (Double Ratchet spec §3.4 header + ciphertext),
0x03 group message and 0x04 sender key distribution (Sender Keys, WhatsApp
Encryption Overview "Group Messages").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat.primitives import AEAD_TAG_SIZE

__all__ = [
    "MAX_CIPHERTEXT_SIZE",
    "MAX_ENVELOPE_SIZE",
    "MAX_PLAINTEXT_SIZE",
    "VERSION",
    "Envelope",
    "EnvelopeType",
    "GroupMessage",
    "PreKeyMessage",
    "RatchetHeader",
    "RatchetMessage",
    "SenderKeyDistribution",
    "parse_envelope",
]

VERSION = 0x01
MAX_PLAINTEXT_SIZE = 65536
MAX_CIPHERTEXT_SIZE = MAX_PLAINTEXT_SIZE + AEAD_TAG_SIZE


class EnvelopeType:
    """Type byte values (docs/protocol-e2e.md §6.1)."""

    PREKEY_MESSAGE = 0x01
    RATCHET_MESSAGE = 0x02
    GROUP_MESSAGE = 0x03
    SENDER_KEY_DISTRIBUTION = 0x04


_U32 = struct.Struct(">I")
_UINT32_MAX = 0xFFFFFFFF


class _Reader:
    """Cursor over untrusted bytes; every short read raises :class:`InvalidMessage`."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise InvalidMessage()
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def ciphertext(self) -> bytes:
        size = self.u32()
        if not AEAD_TAG_SIZE <= size <= MAX_CIPHERTEXT_SIZE:
            raise InvalidMessage()
        return self.take(size)

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise InvalidMessage()


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise CryptoUsageError(f"invalid envelope field: {what}")


def _check_u32(value: int, what: str) -> None:
    _check(0 <= value <= _UINT32_MAX, what)


def _check_ciphertext(ciphertext: bytes) -> None:
    _check(AEAD_TAG_SIZE <= len(ciphertext) <= MAX_CIPHERTEXT_SIZE, "ciphertext length")


def _canonical_x25519(key: bytes) -> bool:
    """Whether ``key`` is an X25519 public key in its one encoding.

    RFC 7748 §5: X25519 masks the top bit of the last byte on input, so a key
    with that bit set is the same key as without it. The ephemeral key of a
    prekey message is authenticated only through the agreement it enters, so
    without this rule anyone could flip that bit and the message would still
    open; envelopes carry X25519 keys (``EK_A``, ``DHs``) with the bit clear,
    as every key pair generates them.
    """
    return len(key) == 32 and not key[31] & 0x80


def _x25519(reader: _Reader) -> bytes:
    key = reader.take(32)
    if not _canonical_x25519(key):
        raise InvalidMessage()
    return key


@dataclass(frozen=True)
class RatchetHeader:
    """Double Ratchet spec §3.4 ``HEADER(dh_pair, pn, n)``."""

    ratchet_key: bytes
    previous_chain_length: int
    message_number: int

    def __post_init__(self) -> None:
        _check(_canonical_x25519(self.ratchet_key), "ratchet key")
        _check_u32(self.previous_chain_length, "pn")
        _check_u32(self.message_number, "n")

    def encode(self) -> bytes:
        """Return ``ratchet_key(32) || pn(u32) || n(u32)`` (40 bytes).

        Returns:
            The encoded header.
        """
        return (
            self.ratchet_key
            + _U32.pack(self.previous_chain_length)
            + _U32.pack(self.message_number)
        )

    @classmethod
    def _read(cls, reader: _Reader) -> RatchetHeader:
        return cls(_x25519(reader), reader.u32(), reader.u32())


@dataclass(frozen=True)
class RatchetMessage:
    """Type 0x02: a Double Ratchet message."""

    header: RatchetHeader
    ciphertext: bytes

    def __post_init__(self) -> None:
        _check_ciphertext(self.ciphertext)

    def _body(self) -> bytes:
        return self.header.encode() + _U32.pack(len(self.ciphertext)) + self.ciphertext

    def encode(self) -> bytes:
        """Serialise the envelope.

        Returns:
            The envelope bytes.
        """
        return bytes([VERSION, EnvelopeType.RATCHET_MESSAGE]) + self._body()

    @classmethod
    def _read(cls, reader: _Reader) -> RatchetMessage:
        header = RatchetHeader._read(reader)
        return cls(header, reader.ciphertext())


@dataclass(frozen=True)
class PreKeyMessage:
    """Type 0x01: X3DH initial message (X3DH spec §3.3) wrapping a ratchet message."""

    identity_key: bytes
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    message: RatchetMessage

    def __post_init__(self) -> None:
        _check(len(self.identity_key) == 32, "identity key")
        _check(_canonical_x25519(self.ephemeral_key), "ephemeral key")
        _check_u32(self.signed_prekey_id, "signed prekey id")
        if self.one_time_prekey_id is not None:
            _check_u32(self.one_time_prekey_id, "one-time prekey id")

    def encode(self) -> bytes:
        """Serialise the envelope.

        Returns:
            The envelope bytes.
        """
        otpk = self.one_time_prekey_id
        return (
            bytes([VERSION, EnvelopeType.PREKEY_MESSAGE])
            + self.identity_key
            + self.ephemeral_key
            + _U32.pack(self.signed_prekey_id)
            + bytes([0 if otpk is None else 1])
            + _U32.pack(0 if otpk is None else otpk)
            + self.message._body()
        )

    @classmethod
    def _read(cls, reader: _Reader) -> PreKeyMessage:
        identity_key = reader.take(32)
        ephemeral_key = _x25519(reader)
        signed_prekey_id = reader.u32()
        flag = reader.u8()
        otpk_id = reader.u32()
        if flag not in (0, 1) or (flag == 0 and otpk_id != 0):
            raise InvalidMessage()
        message = RatchetMessage._read(reader)
        return cls(
            identity_key, ephemeral_key, signed_prekey_id, otpk_id if flag else None, message
        )


@dataclass(frozen=True)
class GroupMessage:
    """Type 0x03: a sender-key message, signed by the sender's signing key."""

    key_id: int
    iteration: int
    ciphertext: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_u32(self.key_id, "key id")
        _check_u32(self.iteration, "iteration")
        _check_ciphertext(self.ciphertext)
        _check(len(self.signature) == 64, "signature")

    @staticmethod
    def header_bytes(key_id: int, iteration: int) -> bytes:
        """Return bytes 0-9 (version, type, key id, iteration): the AEAD associated data.

        Args:
            key_id: Sender key id.
            iteration: Chain iteration.

        Returns:
            10 bytes.
        """
        return (
            bytes([VERSION, EnvelopeType.GROUP_MESSAGE]) + _U32.pack(key_id) + _U32.pack(iteration)
        )

    def signed_bytes(self) -> bytes:
        """Return every byte before the signature (what the signature covers).

        Returns:
            The signed prefix of the envelope.
        """
        return (
            self.header_bytes(self.key_id, self.iteration)
            + _U32.pack(len(self.ciphertext))
            + self.ciphertext
        )

    def encode(self) -> bytes:
        """Serialise the envelope.

        Returns:
            The envelope bytes.
        """
        return self.signed_bytes() + self.signature

    @classmethod
    def _read(cls, reader: _Reader) -> GroupMessage:
        key_id = reader.u32()
        iteration = reader.u32()
        ciphertext = reader.ciphertext()
        return cls(key_id, iteration, ciphertext, reader.take(64))


@dataclass(frozen=True)
class SenderKeyDistribution:
    """Type 0x04: a sender key, sent to each member inside pairwise sessions."""

    key_id: int
    iteration: int
    chain_key: bytes = field(repr=False)
    signing_key: bytes

    def __post_init__(self) -> None:
        _check_u32(self.key_id, "key id")
        _check_u32(self.iteration, "iteration")
        _check(len(self.chain_key) == 32, "chain key")
        _check(len(self.signing_key) == 32, "signing key")

    def encode(self) -> bytes:
        """Serialise the envelope.

        Returns:
            The envelope bytes (74 bytes).
        """
        return (
            bytes([VERSION, EnvelopeType.SENDER_KEY_DISTRIBUTION])
            + _U32.pack(self.key_id)
            + _U32.pack(self.iteration)
            + self.chain_key
            + self.signing_key
        )

    @classmethod
    def _read(cls, reader: _Reader) -> SenderKeyDistribution:
        return cls(reader.u32(), reader.u32(), reader.take(32), reader.take(32))


Envelope = PreKeyMessage | RatchetMessage | GroupMessage | SenderKeyDistribution

_READERS: dict[int, Callable[[_Reader], Envelope]] = {
    EnvelopeType.PREKEY_MESSAGE: PreKeyMessage._read,
    EnvelopeType.RATCHET_MESSAGE: RatchetMessage._read,
    EnvelopeType.GROUP_MESSAGE: GroupMessage._read,
    EnvelopeType.SENDER_KEY_DISTRIBUTION: SenderKeyDistribution._read,
}

MAX_ENVELOPE_SIZE = 119 + MAX_CIPHERTEXT_SIZE
"""Largest valid envelope (a prekey message with the largest ciphertext)."""


def parse_envelope(data: bytes) -> Envelope:
    """Parse untrusted bytes into an envelope value.

    Args:
        data: The received bytes.

    Returns:
        One of :class:`PreKeyMessage`, :class:`RatchetMessage`, :class:`GroupMessage`,
        :class:`SenderKeyDistribution`.

    Raises:
        InvalidMessage: anything but a well-formed version-1 envelope.
    """
    if not isinstance(data, bytes | bytearray) or not 2 <= len(data) <= MAX_ENVELOPE_SIZE:
        raise InvalidMessage()
    reader = _Reader(bytes(data))
    version = reader.u8()
    read = _READERS.get(reader.u8())
    if version != VERSION or read is None:
        raise InvalidMessage()
    envelope: Envelope = read(reader)
    reader.finish()
    return envelope
