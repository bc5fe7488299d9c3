"""Sender keys for group conversations (Signal/WhatsApp "Sender Keys", WhatsApp
Encryption Overview, "Group Messages"; libsignal ``SenderKeyMessage``).

Each sending device has, per conversation, a random ``uint32`` key id, a 32-byte chain
key and a dedicated Ed25519 signing key. It sends a :class:`~crypto.envelope.SenderKeyDistribution`
(key id, chain key, iteration, signing public key) to every member *inside the
pairwise sessions*. A group message is encrypted once:

* ``message_key, next_chain_key = KDF_CK(chain_key)`` (HMAC-SHA256, 0x01 / 0x02, as the
  Double Ratchet spec §5.2);
* key and nonce = HKDF(message key, info ``GROUP_MESSAGE_KEY_INFO``);
* XChaCha20-Poly1305 with associated data = envelope bytes 0-9 (version, type, key id,
  iteration);
* Ed25519 signature over every envelope byte before it.

Receivers verify the signature *before* decrypting, keep up to :data:`MAX_SKIP` skipped
iterations per key (:data:`MAX_SKIPPED_KEYS` in total, oldest evicted) and reject a
replayed iteration. Rotation (on every membership change) is a brand-new sender key
with a new key id: a removed member, who holds only the old chain, cannot derive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crypto.encoding import b64url_encode, field_bytes, field_uint32
from crypto.envelope import (
    MAX_PLAINTEXT_SIZE,
    GroupMessage,
    SenderKeyDistribution,
    parse_envelope,
)
from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import GROUP_MESSAGE_KEY_INFO, expand_message_key, kdf_ck

__all__ = ["MAX_KEYS_PER_SENDER", "MAX_SKIP", "MAX_SKIPPED_KEYS", "GroupReceiver", "GroupSender"]

MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
MAX_KEYS_PER_SENDER = 5
"""Key ids a receiver remembers per sender, so messages sent just before a rotation
still decrypt; the oldest is forgotten first."""


class GroupSender:
    """Our sender key in one conversation. Persist with :meth:`to_dict`."""

    def __init__(self, key_id: int, chain_key: bytes, iteration: int, signing_seed: bytes) -> None:
        """Build from saved parts; use :meth:`generate` for a new key.

        Args:
            key_id: uint32 key id.
            chain_key: Current 32-byte chain key.
            iteration: Iteration of ``chain_key``.
            signing_seed: 32-byte Ed25519 seed of the signing key.

        Raises:
            CryptoUsageError: wrong sizes.
        """
        if len(chain_key) != 32 or not 0 <= key_id <= 0xFFFFFFFF:
            raise CryptoUsageError("invalid sender key")
        self.key_id = key_id
        self._chain_key = chain_key
        self._iteration = iteration
        self._signing_public, self._signing_secret = prim.ed25519_keypair_from_seed(signing_seed)
        self._signing_seed = signing_seed

    def __repr__(self) -> str:
        return f"<GroupSender key_id={self.key_id} iteration={self._iteration}>"

    @classmethod
    def generate(cls, rng: prim.Rng = prim.default_rng) -> GroupSender:
        """Create a new sender key (also how to rotate: make a new one, distribute it).

        Args:
            rng: Random source.

        Returns:
            The sender.
        """
        key_id = int.from_bytes(rng(4), "big")
        return cls(key_id, rng(32), 0, rng(32))

    def distribution(self) -> bytes:
        """Return the sender key distribution envelope for the current iteration.

        Send it to each member through the pairwise session; never in clear.

        Returns:
            The 74-byte envelope.
        """
        return SenderKeyDistribution(
            self.key_id, self._iteration, self._chain_key, self._signing_public
        ).encode()

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt and sign one group message.

        Args:
            plaintext: At most ``MAX_PLAINTEXT_SIZE`` bytes.

        Returns:
            The group message envelope.

        Raises:
            CryptoUsageError: plaintext too large or chain exhausted.
        """
        if len(plaintext) > MAX_PLAINTEXT_SIZE or self._iteration > 0xFFFFFFFF:
            raise CryptoUsageError("plaintext too large or sender key exhausted")
        next_chain_key, message_key = kdf_ck(self._chain_key)
        key, nonce = expand_message_key(message_key, GROUP_MESSAGE_KEY_INFO)
        ad = GroupMessage.header_bytes(self.key_id, self._iteration)
        ciphertext = prim.aead_encrypt(key, nonce, plaintext, ad)
        unsigned = GroupMessage(self.key_id, self._iteration, ciphertext, bytes(64))
        signature = prim.ed25519_sign(self._signing_secret, unsigned.signed_bytes())
        self._chain_key, self._iteration = next_chain_key, self._iteration + 1
        return replace(unsigned, signature=signature).encode()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (secret).

        Returns:
            The dict.
        """
        return {
            "key_id": self.key_id,
            "chain_key": b64url_encode(self._chain_key),
            "iteration": self._iteration,
            "signing_seed": b64url_encode(self._signing_seed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupSender:
        """Restore from :meth:`to_dict`.

        Args:
            data: Saved dict.

        Returns:
            The sender.

        Raises:
            InvalidMessage: malformed data.
        """
        return cls(
            field_uint32(data, "key_id"),
            field_bytes(data, "chain_key", 32),
            field_uint32(data, "iteration"),
            field_bytes(data, "signing_seed", 32),
        )


@dataclass(frozen=True)
class _ReceivingKey:
    signing_key: bytes
    chain_key: bytes = field(repr=False)
    iteration: int
    skipped: Mapping[int, bytes] = field(default_factory=dict, repr=False)


class GroupReceiver:
    """The sender keys we hold for *one* sender device in *one* conversation."""

    def __init__(self) -> None:
        """Start empty; feed it distributions with :meth:`add_distribution`."""
        self._keys: dict[int, _ReceivingKey] = {}

    def __repr__(self) -> str:
        return f"<GroupReceiver key_ids={sorted(self._keys)}>"

    @property
    def key_ids(self) -> frozenset[int]:
        """Key ids we can currently decrypt."""
        return frozenset(self._keys)

    def add_distribution(self, distribution: bytes) -> int:
        """Install a sender key received (decrypted) from a pairwise session.

        A known key id is ignored, so a replayed distribution cannot rewind the chain.

        Args:
            distribution: The sender key distribution envelope.

        Returns:
            The key id.

        Raises:
            InvalidMessage: not a valid distribution envelope.
        """
        parsed = parse_envelope(distribution)
        if not isinstance(parsed, SenderKeyDistribution):
            raise InvalidMessage()
        if parsed.key_id not in self._keys:
            self._keys[parsed.key_id] = _ReceivingKey(
                parsed.signing_key, parsed.chain_key, parsed.iteration
            )
            while len(self._keys) > MAX_KEYS_PER_SENDER:
                del self._keys[next(iter(self._keys))]
        return parsed.key_id

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (secret).

        Returns:
            The dict.
        """
        return {
            "keys": [
                {
                    "key_id": key_id,
                    "signing_key": b64url_encode(k.signing_key),
                    "chain_key": b64url_encode(k.chain_key),
                    "iteration": k.iteration,
                    "skipped": [[i, b64url_encode(mk)] for i, mk in k.skipped.items()],
                }
                for key_id, k in self._keys.items()
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupReceiver:
        """Restore from :meth:`to_dict`.

        Args:
            data: Saved dict.

        Returns:
            The receiver.

        Raises:
            InvalidMessage: malformed data.
        """
        receiver = cls()
        try:
            for k in data["keys"][-MAX_KEYS_PER_SENDER:]:
                skipped = {
                    field_uint32({"i": i}, "i"): field_bytes({"k": mk}, "k", 32)
                    for i, mk in k["skipped"]
                }
                receiver._keys[field_uint32(k, "key_id")] = _ReceivingKey(
                    field_bytes(k, "signing_key", 32),
                    field_bytes(k, "chain_key", 32),
                    field_uint32(k, "iteration"),
                    skipped,
                )
        except (KeyError, TypeError, ValueError):
            raise InvalidMessage() from None
        return receiver

    def decrypt(self, envelope: bytes) -> bytes:
        """Verify and decrypt a group message; on failure nothing changes.

        Args:
            envelope: Received bytes (untrusted).

        Returns:
            The plaintext.

        Raises:
            InvalidMessage: unknown key id, bad signature, replay, too far ahead, or
                authentication failure (opaque).
        """
        parsed = parse_envelope(envelope)
        if not isinstance(parsed, GroupMessage):
            raise InvalidMessage()
        state = self._keys.get(parsed.key_id)
        if state is None:
            raise InvalidMessage()
        prim.ed25519_verify(state.signing_key, parsed.signed_bytes(), parsed.signature)
        new_state, message_key = _message_key(state, parsed.iteration)
        key, nonce = expand_message_key(message_key, GROUP_MESSAGE_KEY_INFO)
        ad = GroupMessage.header_bytes(parsed.key_id, parsed.iteration)
        plaintext = prim.aead_decrypt(key, nonce, parsed.ciphertext, ad)
        self._keys[parsed.key_id] = new_state
        return plaintext


def _message_key(state: _ReceivingKey, iteration: int) -> tuple[_ReceivingKey, bytes]:
    """Find or derive the message key of ``iteration`` without touching ``state``."""
    if iteration < state.iteration:
        message_key = state.skipped.get(iteration)
        if message_key is None:
            raise InvalidMessage()
        skipped = {i: k for i, k in state.skipped.items() if i != iteration}
        return replace(state, skipped=skipped), message_key
    if iteration - state.iteration > MAX_SKIP:
        raise InvalidMessage()
    skipped = dict(state.skipped)
    chain_key = state.chain_key
    for skipped_iteration in range(state.iteration, iteration):
        chain_key, skipped[skipped_iteration] = kdf_ck(chain_key)
    while len(skipped) > MAX_SKIPPED_KEYS:
        del skipped[next(iter(skipped))]
    chain_key, message_key = kdf_ck(chain_key)
    return replace(
        state, chain_key=chain_key, iteration=iteration + 1, skipped=skipped
    ), message_key
