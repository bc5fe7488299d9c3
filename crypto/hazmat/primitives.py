"""Thin, size-checked wrappers over the libsodium primitives exposed by PyNaCl.

Primitives (docs/protocol-e2e.md §1):

* X25519 (RFC 7748 §5) with the all-zero output check of X3DH spec §2.3 and
  Double Ratchet spec §5.1 ("DH(...) ... may reject invalid public keys"): a peer
  key of small order yields an all-zero shared secret and is rejected.
* Ed25519 (RFC 8032) detached signatures, strict verification as done by libsodium.
* The Ed25519 → X25519 conversions of libsodium (``crypto_sign_ed25519_pk_to_curve25519``
  and ``crypto_sign_ed25519_sk_to_curve25519``), so one identity key both signs and
  takes part in X3DH (X3DH spec §2.3 allows a single key for both).
* XChaCha20-Poly1305 IETF AEAD (draft-irtf-cfrg-xchacha), 32-byte key, 24-byte nonce.

Every failure caused by input from a peer raises :class:`~crypto.errors.InvalidMessage`;
wrong sizes coming from our own code raise :class:`~crypto.errors.CryptoUsageError`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from crypto.errors import CryptoUsageError, InvalidMessage

__all__ = [
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SEED_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "X25519_KEY_SIZE",
    "Rng",
    "aead_decrypt",
    "aead_encrypt",
    "default_rng",
    "ed25519_keypair_from_seed",
    "ed25519_public_to_x25519",
    "ed25519_seed_to_x25519_private",
    "ed25519_sign",
    "ed25519_verify",
    "x25519",
    "x25519_public_from_private",
]

X25519_KEY_SIZE = 32
ED25519_SEED_SIZE = 32
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
AEAD_KEY_SIZE = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
AEAD_NONCE_SIZE = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
AEAD_TAG_SIZE = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES

Rng = Callable[[int], bytes]
"""A source of random bytes: ``rng(n)`` returns ``n`` bytes. Tests inject their own."""

_ZERO_32 = bytes(32)


def default_rng(size: int) -> bytes:
    """Return ``size`` bytes from the operating system CSPRNG (libsodium ``randombytes``).

    Args:
        size: Number of bytes wanted.

    Returns:
        ``size`` random bytes.
    """
    return nacl.utils.random(size)


def _require_size(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise CryptoUsageError(f"{name} must be {size} bytes, got {len(value)}")


def x25519_public_from_private(private_key: bytes) -> bytes:
    """Compute the X25519 public key ``X25519(k, 9)`` of a private scalar.

    Args:
        private_key: 32-byte private scalar (clamped by libsodium).

    Returns:
        The 32-byte public key.

    Raises:
        CryptoUsageError: ``private_key`` is not 32 bytes.
    """
    _require_size("X25519 private key", private_key, X25519_KEY_SIZE)
    return sodium.crypto_scalarmult_base(private_key)


def x25519(private_key: bytes, peer_public_key: bytes) -> bytes:
    """Compute an X25519 shared secret, rejecting low-order peer keys.

    Args:
        private_key: Our 32-byte private scalar.
        peer_public_key: The peer's 32-byte public key (untrusted).

    Returns:
        The 32-byte shared secret, never all zero.

    Raises:
        CryptoUsageError: ``private_key`` is not 32 bytes.
        InvalidMessage: the peer key has the wrong size or a small order
            (the shared secret would be all zero).
    """
    _require_size("X25519 private key", private_key, X25519_KEY_SIZE)
    if len(peer_public_key) != X25519_KEY_SIZE:
        raise InvalidMessage()
    try:
        shared = sodium.crypto_scalarmult(private_key, peer_public_key)
    except nacl.exceptions.CryptoError:
        # libsodium returns -1 when the result is all zero (small-order point).
        raise InvalidMessage() from None
    if hmac.compare_digest(shared, _ZERO_32):
        raise InvalidMessage()
    return shared


def ed25519_keypair_from_seed(seed: bytes) -> tuple[bytes, bytes]:
    """Derive an Ed25519 key pair from a 32-byte seed (RFC 8032 §5.1.5).

    Args:
        seed: The 32-byte secret seed.

    Returns:
        ``(public_key, secret_key)``: 32-byte public key and libsodium's 64-byte
        secret key (seed || public key).

    Raises:
        CryptoUsageError: ``seed`` is not 32 bytes.
    """
    _require_size("Ed25519 seed", seed, ED25519_SEED_SIZE)
    public_key, secret_key = sodium.crypto_sign_seed_keypair(seed)
    return public_key, secret_key


def ed25519_sign(secret_key: bytes, message: bytes) -> bytes:
    """Sign ``message`` and return the 64-byte detached signature.

    Args:
        secret_key: libsodium 64-byte Ed25519 secret key.
        message: Bytes to sign.

    Returns:
        The 64-byte signature.

    Raises:
        CryptoUsageError: ``secret_key`` is not 64 bytes.
    """
    _require_size("Ed25519 secret key", secret_key, 64)
    signed = sodium.crypto_sign(message, secret_key)
    return signed[:ED25519_SIGNATURE_SIZE]


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify a detached Ed25519 signature (libsodium strict verification).

    Args:
        public_key: The signer's 32-byte public key (untrusted).
        message: The signed bytes.
        signature: The 64-byte signature (untrusted).

    Raises:
        InvalidMessage: wrong sizes, non-canonical encodings or a bad signature.
    """
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE or len(signature) != ED25519_SIGNATURE_SIZE:
        raise InvalidMessage()
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.CryptoError:
        raise InvalidMessage() from None


def ed25519_public_to_x25519(public_key: bytes) -> bytes:
    """Convert an Ed25519 public key to its X25519 (Montgomery) form.

    Args:
        public_key: 32-byte Ed25519 public key (untrusted).

    Returns:
        The 32-byte X25519 public key.

    Raises:
        InvalidMessage: the key has the wrong size or is not a valid point.
    """
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise InvalidMessage()
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(public_key)
    except nacl.exceptions.CryptoError:
        raise InvalidMessage() from None


def ed25519_seed_to_x25519_private(seed: bytes) -> bytes:
    """Convert an Ed25519 seed to the matching X25519 private scalar.

    The scalar is the clamped first half of SHA-512(seed), as libsodium computes it.

    Args:
        seed: The 32-byte Ed25519 seed.

    Returns:
        The 32-byte X25519 private key.

    Raises:
        CryptoUsageError: ``seed`` is not 32 bytes.
    """
    _, secret_key = ed25519_keypair_from_seed(seed)
    return sodium.crypto_sign_ed25519_sk_to_curve25519(secret_key)


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt with XChaCha20-Poly1305 IETF.

    Args:
        key: 32-byte key.
        nonce: 24-byte nonce, never reused with the same key.
        plaintext: Message to encrypt.
        associated_data: Authenticated, unencrypted data.

    Returns:
        ``ciphertext || tag`` (plaintext length + 16 bytes).

    Raises:
        CryptoUsageError: wrong key or nonce size.
    """
    _require_size("AEAD key", key, AEAD_KEY_SIZE)
    _require_size("AEAD nonce", nonce, AEAD_NONCE_SIZE)
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated_data, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """Authenticate and decrypt XChaCha20-Poly1305 IETF.

    Args:
        key: 32-byte key.
        nonce: 24-byte nonce (untrusted when it came with the message).
        ciphertext: ``ciphertext || tag`` (untrusted).
        associated_data: The associated data the sender used.

    Returns:
        The plaintext.

    Raises:
        CryptoUsageError: wrong key size.
        InvalidMessage: wrong nonce size, short input or authentication failure.
    """
    _require_size("AEAD key", key, AEAD_KEY_SIZE)
    if len(nonce) != AEAD_NONCE_SIZE or len(ciphertext) < AEAD_TAG_SIZE:
        raise InvalidMessage()
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, associated_data, nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise InvalidMessage() from None
