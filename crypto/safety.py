"""Safety numbers (Signal ``NumericFingerprintGenerator``, version 0 layout; Signal
"Safety number updates" blog post, 2016).

For each party, ``fingerprint = H^5200`` where ``H^0 = 0x0000 || identity_key ||
stable_id`` and ``H^(i+1) = SHA-512(H^i || identity_key)``; ``identity_key`` is the
32-byte Ed25519 identity public key and ``stable_id`` the UTF-8 account id. The first
30 bytes give 30 digits (six 5-byte big-endian chunks, each mod 100000, zero padded
to 5 digits). The displayed number is the two 30-digit strings, smaller first: 60
digits, the same on both sides, shown as 12 groups of 5.

QR payload: ``0x01 || own_fp[:32] || peer_fp[:32]`` (65 bytes). A scanned payload
matches when its first half is our peer's fingerprint and its second half ours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from crypto.errors import CryptoUsageError
from crypto.hazmat.kdf import constant_time_equal

__all__ = ["FINGERPRINT_ITERATIONS", "QR_VERSION", "SafetyNumber", "fingerprint", "safety_number"]

FINGERPRINT_ITERATIONS = 5200
FINGERPRINT_VERSION = b"\x00\x00"
QR_VERSION = 0x01


def fingerprint(identity_key: bytes, stable_id: str) -> bytes:
    """Compute one party's 64-byte iterated SHA-512 fingerprint.

    Args:
        identity_key: 32-byte Ed25519 identity public key.
        stable_id: The party's account id.

    Returns:
        The 64-byte fingerprint.

    Raises:
        CryptoUsageError: ``identity_key`` is not 32 bytes.
    """
    if len(identity_key) != 32:
        raise CryptoUsageError("identity key must be 32 bytes")
    digest = FINGERPRINT_VERSION + identity_key + stable_id.encode()
    for _ in range(FINGERPRINT_ITERATIONS):
        digest = hashlib.sha512(digest + identity_key).digest()
    return digest


def _digits(fp: bytes) -> str:
    return "".join(f"{int.from_bytes(fp[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


@dataclass(frozen=True)
class SafetyNumber:
    """A safety number as seen from one side.

    Attributes:
        own_fingerprint: Our 64-byte fingerprint.
        peer_fingerprint: The peer's 64-byte fingerprint.
    """

    own_fingerprint: bytes
    peer_fingerprint: bytes

    @property
    def digits(self) -> str:
        """The 60 digits, identical on both sides."""
        own, peer = _digits(self.own_fingerprint), _digits(self.peer_fingerprint)
        return own + peer if own <= peer else peer + own

    def formatted(self) -> str:
        """Return the 60 digits as 12 space-separated groups of 5.

        Returns:
            The printable safety number.
        """
        d = self.digits
        return " ".join(d[i : i + 5] for i in range(0, 60, 5))

    def qr_payload(self) -> bytes:
        """Return the bytes to show as a QR code.

        Returns:
            ``0x01 || own[:32] || peer[:32]``.
        """
        return bytes([QR_VERSION]) + self.own_fingerprint[:32] + self.peer_fingerprint[:32]

    def matches_qr(self, scanned: bytes) -> bool:
        """Compare a payload scanned from the peer's screen with ours.

        Args:
            scanned: The peer's :meth:`qr_payload` (untrusted).

        Returns:
            ``True`` when both sides see the same two keys.
        """
        expected = bytes([QR_VERSION]) + self.peer_fingerprint[:32] + self.own_fingerprint[:32]
        return len(scanned) == len(expected) and constant_time_equal(scanned, expected)


def safety_number(
    own_identity_key: bytes, own_id: str, peer_identity_key: bytes, peer_id: str
) -> SafetyNumber:
    """Compute the safety number between us and a peer.

    Args:
        own_identity_key: Our Ed25519 identity public key.
        own_id: Our stable account id.
        peer_identity_key: The peer's Ed25519 identity public key.
        peer_id: The peer's stable account id.

    Returns:
        The safety number.

    Raises:
        CryptoUsageError: a key is not 32 bytes.
    """
    return SafetyNumber(
        fingerprint(own_identity_key, own_id), fingerprint(peer_identity_key, peer_id)
    )
