"""The bridge key: sealing at rest and signing tokens (docs/email-bridge.md, "The bridge key").

Sans-I/O. The bridge key is a 32-byte secret given base64url in
``CARNET_BRIDGE_KEY`` (never in the repository or the database). From it
HKDF-SHA256 derives one key per use, so no key serves two purposes:

* ``seal``: XChaCha20-Poly1305 of a bridge device's private state and of the
  messages it decrypted, with the record's identity as associated data (a
  sealed blob cannot be moved to another record). Format:
  ``key_id (8) || nonce (24) || ciphertext``; ``key_id`` names the bridge key,
  so after a rotation (``CARNET_BRIDGE_PREVIOUS_KEYS``) old blobs still open
  and are sealed again with the new key when next written (RGPD art. 32).
* ``tag``: HMAC-SHA256 of link, reply-address and form tokens, compared in
  constant time. Tags made with a previous key still verify.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from crypto.encoding import b64url_decode
from crypto.errors import CryptoError
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import constant_time_equal, hkdf_sha256, hmac_sha256
from server.bridge.errors import BadBridgeKey, SealBroken

KEY_SIZE = 32
KEY_ID_SIZE = 8
NONCE_SIZE = 24


def parse_key(text: str) -> bytes:
    """Decode a base64url bridge key.

    Raises:
        BadBridgeKey: not base64url or not 32 bytes.
    """
    try:
        return b64url_decode(text.strip().rstrip("="), KEY_SIZE)
    except CryptoError:
        raise BadBridgeKey("the bridge key must be 32 bytes, base64url") from None


class _Key:
    def __init__(self, secret: bytes) -> None:
        self.key_id = hashlib.blake2b(
            secret, digest_size=KEY_ID_SIZE, person=b"carnet-bkid"
        ).digest()
        self.seal = hkdf_sha256(secret, b"carnet-bridge", b"seal v1", 32)
        self.tag = hkdf_sha256(secret, b"carnet-bridge", b"token v1", 32)


class BridgeKeyring:
    """The current bridge key and the previous ones (rotation).

    Args:
        current: the 32-byte key that seals and signs.
        previous: older keys, only to open and verify.
    """

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self._current = _Key(current)
        self._all = {k.key_id: k for k in (self._current, *(_Key(p) for p in previous))}

    def __repr__(self) -> str:
        return f"<BridgeKeyring keys={len(self._all)}>"

    def seal(self, plaintext: bytes, record: str) -> bytes:
        """Encrypt ``plaintext`` for the record named ``record``."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        key = self._current
        return key.key_id + nonce + prim.aead_encrypt(key.seal, nonce, plaintext, record.encode())

    def open(self, sealed: bytes, record: str) -> bytes:
        """Decrypt a sealed blob of ``record``.

        Raises:
            SealBroken: unknown key, wrong record or tampered blob.
        """
        key = self._all.get(sealed[:KEY_ID_SIZE])
        if key is None:
            raise SealBroken("sealed with an unknown bridge key")
        nonce = sealed[KEY_ID_SIZE : KEY_ID_SIZE + NONCE_SIZE]
        try:
            return prim.aead_decrypt(
                key.seal, nonce, sealed[KEY_ID_SIZE + NONCE_SIZE :], record.encode()
            )
        except CryptoError:
            raise SealBroken("the sealed record does not open") from None

    def is_current(self, sealed: bytes) -> bool:
        return sealed[:KEY_ID_SIZE] == self._current.key_id

    def tag(self, message: bytes, size: int = 32) -> bytes:
        """HMAC-SHA256 of ``message`` with the current key, truncated to ``size`` bytes."""
        return hmac_sha256(self._current.tag, message)[:size]

    def verify(self, message: bytes, tag: bytes) -> bool:
        """Whether ``tag`` was made by any kept key (constant-time comparison)."""
        good = False
        for key in self._all.values():
            good |= constant_time_equal(hmac_sha256(key.tag, message)[: len(tag)], tag)
        return good and len(tag) >= 10
