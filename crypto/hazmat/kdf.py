"""Key derivation: HKDF-SHA256, HMAC-SHA256 and the KDF chains built from them.

* HKDF: RFC 5869, SHA-256, from the standard library ``hmac``/``hashlib``.
* X3DH KDF: Signal X3DH spec §2.2, ``HKDF(F || KM)`` with ``F`` = 32 ``0xFF`` bytes,
  a 32-byte zero salt and :data:`X3DH_INFO`.
* ``KDF_RK``: Double Ratchet spec §5.2, HKDF with the root key as salt, the DH output
  as input key material and :data:`RATCHET_INFO`; 64 output bytes split into the new
  root key and a chain key.
* ``KDF_CK``: Double Ratchet spec §5.2, message key = HMAC(ck, 0x01), next chain key
  = HMAC(ck, 0x02). Sender keys (Signal/WhatsApp whitepaper) use the same chain.
* Message key expansion: HKDF(ikm = message key, salt = 32 zero bytes, info) into a
  32-byte XChaCha20-Poly1305 key and its 24-byte nonce (Double Ratchet spec §5.2
  "ENCRYPT ... HKDF to derive an encryption key ... and IV"). Each message key is
  used exactly once, so the derived nonce is never reused.
"""

from __future__ import annotations

import hashlib
import hmac

from crypto.errors import CryptoUsageError

__all__ = [
    "GROUP_MESSAGE_KEY_INFO",
    "HASH_SIZE",
    "MESSAGE_KEY_INFO",
    "RATCHET_INFO",
    "X3DH_INFO",
    "constant_time_equal",
    "expand_message_key",
    "hkdf_sha256",
    "hmac_sha256",
    "kdf_ck",
    "kdf_rk",
    "x3dh_kdf",
]

HASH_SIZE = 32
X3DH_INFO = b"Carnet X3DH v1"
RATCHET_INFO = b"Carnet ratchet v1"
MESSAGE_KEY_INFO = b"Carnet message keys v1"
GROUP_MESSAGE_KEY_INFO = b"Carnet group message keys v1"

_X3DH_F = b"\xff" * 32
_ZERO_SALT = bytes(HASH_SIZE)
_MESSAGE_KEY_CONSTANT = b"\x01"
_CHAIN_KEY_CONSTANT = b"\x02"


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """Return HMAC-SHA256(key, data) (RFC 2104).

    Args:
        key: MAC key of any length.
        data: Data to authenticate.

    Returns:
        The 32-byte tag.
    """
    return hmac.new(key, data, hashlib.sha256).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in constant time (``hmac.compare_digest``).

    Args:
        a: First value.
        b: Second value.

    Returns:
        ``True`` when equal.
    """
    return hmac.compare_digest(a, b)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 extract-then-expand (RFC 5869 §2).

    Args:
        ikm: Input key material.
        salt: Salt; empty means ``HashLen`` zero bytes (RFC 5869 §2.2).
        info: Context string.
        length: Output length, at most 255 * 32 bytes.

    Returns:
        ``length`` bytes of output key material.

    Raises:
        CryptoUsageError: ``length`` is negative or above 8160.
    """
    if not 0 <= length <= 255 * HASH_SIZE:
        raise CryptoUsageError("HKDF-SHA256 output length must be within 0..8160")
    prk = hmac_sha256(salt or _ZERO_SALT, ikm)
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac_sha256(prk, block + info + bytes([counter]))
        okm += block
        counter += 1
    return okm[:length]


def x3dh_kdf(key_material: bytes) -> bytes:
    """X3DH spec §2.2 KDF: 32 bytes of HKDF(F || KM) with a zero salt and :data:`X3DH_INFO`.

    Args:
        key_material: ``DH1 || DH2 || DH3 [|| DH4]``.

    Returns:
        The 32-byte shared secret SK.
    """
    return hkdf_sha256(_X3DH_F + key_material, _ZERO_SALT, X3DH_INFO, 32)


def kdf_rk(root_key: bytes, dh_output: bytes) -> tuple[bytes, bytes]:
    """Double Ratchet spec §5.2 ``KDF_RK(rk, dh_out)``.

    Args:
        root_key: Current 32-byte root key (HKDF salt).
        dh_output: 32-byte X25519 output (HKDF input key material).

    Returns:
        ``(new_root_key, chain_key)``.
    """
    okm = hkdf_sha256(dh_output, root_key, RATCHET_INFO, 64)
    return okm[:32], okm[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """Double Ratchet spec §5.2 ``KDF_CK(ck)``.

    Args:
        chain_key: Current 32-byte chain key.

    Returns:
        ``(next_chain_key, message_key)``.
    """
    return hmac_sha256(chain_key, _CHAIN_KEY_CONSTANT), hmac_sha256(
        chain_key, _MESSAGE_KEY_CONSTANT
    )


def expand_message_key(message_key: bytes, info: bytes = MESSAGE_KEY_INFO) -> tuple[bytes, bytes]:
    """Expand a message key into an XChaCha20-Poly1305 key and nonce.

    Args:
        message_key: 32-byte message key from ``KDF_CK``.
        info: :data:`MESSAGE_KEY_INFO` (pairwise) or :data:`GROUP_MESSAGE_KEY_INFO`.

    Returns:
        ``(aead_key, nonce)``: 32 and 24 bytes.
    """
    okm = hkdf_sha256(message_key, _ZERO_SALT, info, 56)
    return okm[:32], okm[32:]
