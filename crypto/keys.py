"""Device keys and the public prekey bundle (Signal X3DH spec §2.2, §3.1-§3.3).

Per device (docs/protocol-e2e.md §2):

* an **identity key**: Ed25519, stored as its 32-byte seed. Its X25519 form (for
  X3DH's DH1/DH2) comes from libsodium's Ed25519 → Curve25519 conversion;
* a **signed prekey** (X25519) with a ``uint32`` id, signed by the identity key over
  ``SIGNED_PREKEY_CONTEXT || spk_pub``, rotated by the caller (time is passed in);
  the previous one is kept until the caller drops it, so late initial messages work;
* a batch of **one-time prekeys** (X25519) with ``uint32`` ids, each used once.

All classes are immutable values that check sizes on construction; private key
material is excluded from ``repr``. Operations that "change" keys return new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crypto.encoding import UINT32_MAX, b64url_encode, field_bytes, field_uint32
from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat import primitives as prim

__all__ = [
    "SIGNED_PREKEY_CONTEXT",
    "DeviceKeys",
    "IdentityKeyPair",
    "OneTimePreKey",
    "PreKeyBundle",
    "SignedPreKey",
    "X25519KeyPair",
    "verify_signed_prekey",
]

SIGNED_PREKEY_CONTEXT = b"Carnet signed prekey v1\x00"
"""Prefix of the bytes an identity key signs for a signed prekey (domain separation
from every other signature made with the identity key, e.g. login challenges)."""


def _check_size(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise CryptoUsageError(f"{name} must be {size} bytes")


def _check_id(name: str, value: int) -> None:
    if not 0 <= value <= UINT32_MAX:
        raise CryptoUsageError(f"{name} must be a uint32")


def verify_signed_prekey(identity_key: bytes, signed_prekey: bytes, signature: bytes) -> None:
    """Check a signed prekey signature (X3DH spec §3.3); the server calls this on upload.

    Args:
        identity_key: The device's 32-byte Ed25519 identity public key.
        signed_prekey: The 32-byte X25519 signed prekey.
        signature: The 64-byte Ed25519 signature over
            ``SIGNED_PREKEY_CONTEXT || signed_prekey``.

    Raises:
        InvalidMessage: sizes or signature are wrong.
    """
    if len(signed_prekey) != prim.X25519_KEY_SIZE:
        raise InvalidMessage()
    prim.ed25519_verify(identity_key, SIGNED_PREKEY_CONTEXT + signed_prekey, signature)


@dataclass(frozen=True)
class X25519KeyPair:
    """An X25519 key pair; ``private`` is hidden from ``repr``."""

    private: bytes = field(repr=False)
    public: bytes

    def __post_init__(self) -> None:
        _check_size("X25519 private key", self.private, prim.X25519_KEY_SIZE)
        _check_size("X25519 public key", self.public, prim.X25519_KEY_SIZE)
        if prim.x25519_public_from_private(self.private) != self.public:
            raise CryptoUsageError("X25519 public key does not match the private key")

    @classmethod
    def from_private(cls, private: bytes) -> X25519KeyPair:
        """Build a key pair from its private scalar.

        Args:
            private: 32-byte private key.

        Returns:
            The key pair.

        Raises:
            CryptoUsageError: wrong size.
        """
        return cls(private, prim.x25519_public_from_private(private))

    @classmethod
    def generate(cls, rng: prim.Rng = prim.default_rng) -> X25519KeyPair:
        """Generate a fresh key pair.

        Args:
            rng: Random source (injected by tests).

        Returns:
            The key pair.

        Raises:
            CryptoUsageError: ``rng`` returned the wrong number of bytes.
        """
        return cls.from_private(rng(prim.X25519_KEY_SIZE))


@dataclass(frozen=True)
class IdentityKeyPair:
    """A device's Ed25519 identity key, stored as its seed (hidden from ``repr``)."""

    seed: bytes = field(repr=False)
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        _check_size("Ed25519 seed", self.seed, prim.ED25519_SEED_SIZE)
        public, _ = prim.ed25519_keypair_from_seed(self.seed)
        object.__setattr__(self, "public", public)

    @classmethod
    def generate(cls, rng: prim.Rng = prim.default_rng) -> IdentityKeyPair:
        """Generate a fresh identity key.

        Args:
            rng: Random source (injected by tests).

        Returns:
            The identity key pair.

        Raises:
            CryptoUsageError: ``rng`` returned the wrong number of bytes.
        """
        return cls(rng(prim.ED25519_SEED_SIZE))

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with Ed25519 (callers must prefix a context string).

        Args:
            message: Bytes to sign.

        Returns:
            The 64-byte signature.
        """
        _, secret_key = prim.ed25519_keypair_from_seed(self.seed)
        return prim.ed25519_sign(secret_key, message)

    def x25519_private(self) -> bytes:
        """Return the X25519 form of the private key (libsodium conversion).

        Returns:
            The 32-byte X25519 private scalar.
        """
        return prim.ed25519_seed_to_x25519_private(self.seed)


@dataclass(frozen=True)
class SignedPreKey:
    """A signed prekey with its id, signature and creation time (seconds, caller's clock)."""

    key_id: int
    key_pair: X25519KeyPair
    signature: bytes
    created_at: int

    def __post_init__(self) -> None:
        _check_id("signed prekey id", self.key_id)
        _check_size("signature", self.signature, prim.ED25519_SIGNATURE_SIZE)

    @classmethod
    def generate(
        cls,
        identity: IdentityKeyPair,
        key_id: int,
        now: int,
        rng: prim.Rng = prim.default_rng,
    ) -> SignedPreKey:
        """Generate and sign a new signed prekey.

        Args:
            identity: The identity key that signs it.
            key_id: Its uint32 id.
            now: Current time in seconds (the caller's clock).
            rng: Random source.

        Returns:
            The signed prekey.

        Raises:
            CryptoUsageError: ``key_id`` out of range.
        """
        key_pair = X25519KeyPair.generate(rng)
        signature = identity.sign(SIGNED_PREKEY_CONTEXT + key_pair.public)
        return cls(key_id, key_pair, signature, now)


@dataclass(frozen=True)
class OneTimePreKey:
    """A one-time prekey and its id."""

    key_id: int
    key_pair: X25519KeyPair

    def __post_init__(self) -> None:
        _check_id("one-time prekey id", self.key_id)


@dataclass(frozen=True)
class PreKeyBundle:
    """The public keys another device needs to start a session (X3DH spec §3.2).

    The server stores and hands these out; :meth:`to_dict` / :meth:`from_dict` give the
    JSON-able form (base64url without padding, ids as integers).
    """

    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int | None = None
    one_time_prekey: bytes | None = None

    def __post_init__(self) -> None:
        _check_size("identity key", self.identity_key, prim.ED25519_PUBLIC_KEY_SIZE)
        _check_id("signed prekey id", self.signed_prekey_id)
        _check_size("signed prekey", self.signed_prekey, prim.X25519_KEY_SIZE)
        _check_size("signature", self.signed_prekey_signature, prim.ED25519_SIGNATURE_SIZE)
        if (self.one_time_prekey_id is None) != (self.one_time_prekey is None):
            raise CryptoUsageError("one-time prekey id and key go together")
        if self.one_time_prekey_id is not None and self.one_time_prekey is not None:
            _check_id("one-time prekey id", self.one_time_prekey_id)
            _check_size("one-time prekey", self.one_time_prekey, prim.X25519_KEY_SIZE)

    def verify(self) -> None:
        """Verify the signed prekey signature.

        Raises:
            InvalidMessage: the signature does not verify.
        """
        verify_signed_prekey(self.identity_key, self.signed_prekey, self.signed_prekey_signature)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (docs/protocol-e2e.md §2.3).

        Returns:
            A dict of str/int values.
        """
        data: dict[str, Any] = {
            "identity_key": b64url_encode(self.identity_key),
            "signed_prekey_id": self.signed_prekey_id,
            "signed_prekey": b64url_encode(self.signed_prekey),
            "signed_prekey_signature": b64url_encode(self.signed_prekey_signature),
        }
        if self.one_time_prekey_id is not None and self.one_time_prekey is not None:
            data["one_time_prekey_id"] = self.one_time_prekey_id
            data["one_time_prekey"] = b64url_encode(self.one_time_prekey)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PreKeyBundle:
        """Parse the JSON-able form; does *not* verify the signature (call :meth:`verify`).

        Args:
            data: Untrusted mapping.

        Returns:
            The bundle.

        Raises:
            InvalidMessage: missing, extra or malformed fields.
        """
        optional = {"one_time_prekey_id", "one_time_prekey"}
        required = {"identity_key", "signed_prekey_id", "signed_prekey", "signed_prekey_signature"}
        if not isinstance(data, Mapping) or not required <= set(data) <= required | optional:
            raise InvalidMessage()
        has_otpk = "one_time_prekey" in data
        if has_otpk != ("one_time_prekey_id" in data):
            raise InvalidMessage()
        return cls(
            identity_key=field_bytes(data, "identity_key", 32),
            signed_prekey_id=field_uint32(data, "signed_prekey_id"),
            signed_prekey=field_bytes(data, "signed_prekey", 32),
            signed_prekey_signature=field_bytes(data, "signed_prekey_signature", 64),
            one_time_prekey_id=field_uint32(data, "one_time_prekey_id") if has_otpk else None,
            one_time_prekey=field_bytes(data, "one_time_prekey", 32) if has_otpk else None,
        )


@dataclass(frozen=True)
class DeviceKeys:
    """All private keys of one device. Persist with :meth:`to_dict` (secret!).

    Attributes:
        identity: The Ed25519 identity key.
        signed_prekey: The current signed prekey.
        previous_signed_prekey: The one before the last rotation, kept for late messages.
        one_time_prekeys: Unused one-time prekeys.
        next_prekey_id: Next id to give a one-time or signed prekey.
    """

    identity: IdentityKeyPair
    signed_prekey: SignedPreKey
    previous_signed_prekey: SignedPreKey | None = None
    one_time_prekeys: tuple[OneTimePreKey, ...] = ()
    next_prekey_id: int = 1

    @classmethod
    def generate(
        cls, now: int, one_time_prekeys: int = 100, rng: prim.Rng = prim.default_rng
    ) -> DeviceKeys:
        """Generate a new device: identity, signed prekey and one-time prekeys.

        Args:
            now: Current time in seconds.
            one_time_prekeys: How many one-time prekeys to create.
            rng: Random source.

        Returns:
            The device keys.
        """
        identity = IdentityKeyPair.generate(rng)
        keys = cls(identity, SignedPreKey.generate(identity, 0, now, rng))
        return keys.with_new_one_time_prekeys(one_time_prekeys, rng)

    def with_new_one_time_prekeys(self, count: int, rng: prim.Rng = prim.default_rng) -> DeviceKeys:
        """Return a copy with ``count`` more one-time prekeys (replenishment).

        Args:
            count: Number of keys to add.
            rng: Random source.

        Returns:
            The new device keys; publish the added ones' public halves.
        """
        first = self.next_prekey_id
        added = tuple(OneTimePreKey(first + i, X25519KeyPair.generate(rng)) for i in range(count))
        return replace(
            self, one_time_prekeys=self.one_time_prekeys + added, next_prekey_id=first + count
        )

    def with_rotated_signed_prekey(self, now: int, rng: prim.Rng = prim.default_rng) -> DeviceKeys:
        """Return a copy with a new signed prekey; the current one becomes the previous one.

        Args:
            now: Current time in seconds.
            rng: Random source.

        Returns:
            The new device keys.
        """
        new = SignedPreKey.generate(self.identity, self.next_prekey_id, now, rng)
        return replace(
            self,
            signed_prekey=new,
            previous_signed_prekey=self.signed_prekey,
            next_prekey_id=self.next_prekey_id + 1,
        )

    def without_one_time_prekey(self, key_id: int) -> DeviceKeys:
        """Return a copy without the one-time prekey ``key_id`` (after it was used).

        Args:
            key_id: Id reported by :func:`crypto.accept_session`.

        Returns:
            The new device keys.
        """
        kept = tuple(k for k in self.one_time_prekeys if k.key_id != key_id)
        return replace(self, one_time_prekeys=kept)

    def find_signed_prekey(self, key_id: int) -> SignedPreKey | None:
        """Look up the current or previous signed prekey by id.

        Args:
            key_id: Signed prekey id.

        Returns:
            The key, or ``None``.
        """
        for spk in (self.signed_prekey, self.previous_signed_prekey):
            if spk is not None and spk.key_id == key_id:
                return spk
        return None

    def find_one_time_prekey(self, key_id: int) -> OneTimePreKey | None:
        """Look up an unused one-time prekey by id.

        Args:
            key_id: One-time prekey id.

        Returns:
            The key, or ``None``.
        """
        return next((k for k in self.one_time_prekeys if k.key_id == key_id), None)

    def bundle(self, one_time_prekey_id: int | None = None) -> PreKeyBundle:
        """Return the public bundle, with the given one-time prekey if any.

        Args:
            one_time_prekey_id: Which one-time prekey to include, or ``None``.

        Returns:
            The bundle.

        Raises:
            CryptoUsageError: no such one-time prekey.
        """
        spk = self.signed_prekey
        otpk = None
        if one_time_prekey_id is not None:
            otpk = self.find_one_time_prekey(one_time_prekey_id)
            if otpk is None:
                raise CryptoUsageError("unknown one-time prekey id")
        return PreKeyBundle(
            identity_key=self.identity.public,
            signed_prekey_id=spk.key_id,
            signed_prekey=spk.key_pair.public,
            signed_prekey_signature=spk.signature,
            one_time_prekey_id=None if otpk is None else otpk.key_id,
            one_time_prekey=None if otpk is None else otpk.key_pair.public,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise every private key (the SDK encrypts this at rest).

        Returns:
            A JSON-able dict.
        """

        def spk_dict(spk: SignedPreKey) -> dict[str, Any]:
            return {
                "id": spk.key_id,
                "private": b64url_encode(spk.key_pair.private),
                "signature": b64url_encode(spk.signature),
                "created_at": spk.created_at,
            }

        return {
            "identity_seed": b64url_encode(self.identity.seed),
            "signed_prekey": spk_dict(self.signed_prekey),
            "previous_signed_prekey": (
                None
                if self.previous_signed_prekey is None
                else spk_dict(self.previous_signed_prekey)
            ),
            "one_time_prekeys": [
                {"id": k.key_id, "private": b64url_encode(k.key_pair.private)}
                for k in self.one_time_prekeys
            ],
            "next_prekey_id": self.next_prekey_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceKeys:
        """Restore keys saved with :meth:`to_dict`.

        Args:
            data: The saved dict.

        Returns:
            The device keys.

        Raises:
            InvalidMessage: the data is malformed.
        """
        try:

            def spk(d: Mapping[str, Any]) -> SignedPreKey:
                created_at = d["created_at"]
                if not isinstance(created_at, int):
                    raise InvalidMessage()
                return SignedPreKey(
                    field_uint32(d, "id"),
                    X25519KeyPair.from_private(field_bytes(d, "private", 32)),
                    field_bytes(d, "signature", 64),
                    created_at,
                )

            previous = data["previous_signed_prekey"]
            return cls(
                identity=IdentityKeyPair(field_bytes(data, "identity_seed", 32)),
                signed_prekey=spk(data["signed_prekey"]),
                previous_signed_prekey=None if previous is None else spk(previous),
                one_time_prekeys=tuple(
                    OneTimePreKey(
                        field_uint32(k, "id"),
                        X25519KeyPair.from_private(field_bytes(k, "private", 32)),
                    )
                    for k in data["one_time_prekeys"]
                ),
                next_prekey_id=field_uint32(data, "next_prekey_id"),
            )
        except (KeyError, TypeError, AttributeError, CryptoUsageError):
            raise InvalidMessage() from None
