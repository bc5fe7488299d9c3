"""Double Ratchet state and steps (Signal Double Ratchet spec, revision 1, §3 and §5).

The state is an immutable :class:`RatchetState`; :func:`encrypt` and :func:`decrypt`
return a *new* state. A failed decryption therefore leaves the caller's state exactly
as it was (spec §3.5: "if an exception is raised ... discard any changes to the
state"); the caller commits the returned state only on success.

Parameters (docs/protocol-e2e.md §4):

* ``GENERATE_DH``/``DH``: X25519, all-zero outputs rejected (spec §5.1);
* ``KDF_RK``/``KDF_CK``: :mod:`crypto.hazmat.kdf` (spec §5.2);
* ``ENCRYPT``: XChaCha20-Poly1305 with key and nonce derived from the message key by
  HKDF (``MESSAGE_KEY_INFO``), so no nonce travels in the envelope; associated data
  ``AD || 0x01 || HEADER`` where ``AD`` is the 64-byte X3DH associated data, ``0x01`` the
  envelope version and ``HEADER = dh(32) || pn(u32) || n(u32)`` (spec §3.4
  ``CONCAT``);
* ``MAX_SKIP`` = :data:`MAX_SKIP` message keys per chain (spec §3.5): a larger jump is
  rejected before any state change; at most :data:`MAX_SKIPPED_KEYS` skipped keys are
  stored in total, the oldest evicted first (spec §6.5 "Deletion of skipped keys").

A message whose key was already used (a replay) finds neither a stored skipped key nor
a fresh chain position and is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crypto.encoding import b64url_decode, b64url_encode, field_bytes, field_uint32
from crypto.envelope import VERSION, RatchetHeader, RatchetMessage
from crypto.errors import CryptoUsageError, InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import expand_message_key, kdf_ck, kdf_rk
from crypto.keys import X25519KeyPair

__all__ = [
    "MAX_SKIP",
    "MAX_SKIPPED_KEYS",
    "RatchetState",
    "decrypt",
    "encrypt",
    "init_initiator",
    "init_responder",
]

MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000

SkippedKeys = Mapping[tuple[bytes, int], bytes]


@dataclass(frozen=True)
class RatchetState:
    """Spec §3.2 state variables; secrets are hidden from ``repr``.

    ``skipped`` maps ``(ratchet public key, message number)`` to a message key and is
    ordered oldest first. Never mutated in place.
    """

    associated_data: bytes
    root_key: bytes = field(repr=False)
    sending_key_pair: X25519KeyPair  # DHs
    remote_ratchet_key: bytes | None  # DHr
    sending_chain_key: bytes | None = field(repr=False)  # CKs
    receiving_chain_key: bytes | None = field(repr=False)  # CKr
    sending_count: int = 0  # Ns
    receiving_count: int = 0  # Nr
    previous_sending_count: int = 0  # PN
    skipped: SkippedKeys = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (secret: the SDK encrypts it at rest).

        Returns:
            The dict.
        """

        def opt(value: bytes | None) -> str | None:
            return None if value is None else b64url_encode(value)

        return {
            "ad": b64url_encode(self.associated_data),
            "rk": b64url_encode(self.root_key),
            "dhs": b64url_encode(self.sending_key_pair.private),
            "dhr": opt(self.remote_ratchet_key),
            "cks": opt(self.sending_chain_key),
            "ckr": opt(self.receiving_chain_key),
            "ns": self.sending_count,
            "nr": self.receiving_count,
            "pn": self.previous_sending_count,
            "skipped": [
                [b64url_encode(dh), n, b64url_encode(mk)] for (dh, n), mk in self.skipped.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatchetState:
        """Restore a state saved with :meth:`to_dict`.

        Args:
            data: The saved dict.

        Returns:
            The state.

        Raises:
            InvalidMessage: malformed data.
        """

        def opt(name: str) -> bytes | None:
            return None if data[name] is None else field_bytes(data, name, 32)

        try:
            skipped = {
                (b64url_decode(dh, 32), field_uint32({"n": n}, "n")): b64url_decode(mk, 32)
                for dh, n, mk in data["skipped"]
            }
            if len(skipped) > MAX_SKIPPED_KEYS:
                raise InvalidMessage()
            return cls(
                associated_data=field_bytes(data, "ad", 64),
                root_key=field_bytes(data, "rk", 32),
                sending_key_pair=X25519KeyPair.from_private(field_bytes(data, "dhs", 32)),
                remote_ratchet_key=opt("dhr"),
                sending_chain_key=opt("cks"),
                receiving_chain_key=opt("ckr"),
                sending_count=field_uint32(data, "ns"),
                receiving_count=field_uint32(data, "nr"),
                previous_sending_count=field_uint32(data, "pn"),
                skipped=skipped,
            )
        except (KeyError, TypeError, ValueError, CryptoUsageError):
            raise InvalidMessage() from None


def init_initiator(
    shared_secret: bytes,
    remote_signed_prekey: bytes,
    associated_data: bytes,
    rng: prim.Rng = prim.default_rng,
) -> RatchetState:
    """Spec §3.3 ``RatchetInitAlice``.

    Args:
        shared_secret: SK from X3DH.
        remote_signed_prekey: The responder's signed prekey (its first ratchet key).
        associated_data: AD from X3DH (64 bytes).
        rng: Random source for the first ratchet key pair.

    Returns:
        The initial state.

    Raises:
        InvalidMessage: the signed prekey is a low-order point.
    """
    sending = X25519KeyPair.generate(rng)
    root_key, chain_key = kdf_rk(shared_secret, prim.x25519(sending.private, remote_signed_prekey))
    return RatchetState(
        associated_data=associated_data,
        root_key=root_key,
        sending_key_pair=sending,
        remote_ratchet_key=remote_signed_prekey,
        sending_chain_key=chain_key,
        receiving_chain_key=None,
    )


def init_responder(
    shared_secret: bytes, signed_prekey: X25519KeyPair, associated_data: bytes
) -> RatchetState:
    """Spec §3.3 ``RatchetInitBob``.

    Args:
        shared_secret: SK from X3DH.
        signed_prekey: Our signed prekey pair (our first ratchet key pair).
        associated_data: AD from X3DH (64 bytes).

    Returns:
        The initial state (it cannot send before it has received).
    """
    return RatchetState(
        associated_data=associated_data,
        root_key=shared_secret,
        sending_key_pair=signed_prekey,
        remote_ratchet_key=None,
        sending_chain_key=None,
        receiving_chain_key=None,
    )


def _aead_associated_data(state: RatchetState, header: RatchetHeader) -> bytes:
    return state.associated_data + bytes([VERSION]) + header.encode()


def encrypt(state: RatchetState, plaintext: bytes) -> tuple[RatchetState, RatchetMessage]:
    """Spec §3.4 ``RatchetEncrypt``.

    Args:
        state: Current state.
        plaintext: At most ``MAX_PLAINTEXT_SIZE`` bytes.

    Returns:
        ``(new_state, message)``.

    Raises:
        CryptoUsageError: no sending chain yet (responder before its first receive),
            the plaintext is too large, or the chain is exhausted.
    """
    if state.sending_chain_key is None:
        raise CryptoUsageError("cannot send before the first message was received")
    next_chain_key, message_key = kdf_ck(state.sending_chain_key)
    header = RatchetHeader(
        state.sending_key_pair.public, state.previous_sending_count, state.sending_count
    )
    key, nonce = expand_message_key(message_key)
    ciphertext = prim.aead_encrypt(key, nonce, plaintext, _aead_associated_data(state, header))
    new_state = replace(
        state, sending_chain_key=next_chain_key, sending_count=state.sending_count + 1
    )
    return new_state, RatchetMessage(header, ciphertext)


def _skip_message_keys(state: RatchetState, until: int) -> RatchetState:
    """Spec §3.5 ``SkipMessageKeys``; raises before changing anything if too far."""
    if state.receiving_count + MAX_SKIP < until:
        raise InvalidMessage()
    if state.receiving_chain_key is None or state.remote_ratchet_key is None:
        return state
    skipped = dict(state.skipped)
    chain_key = state.receiving_chain_key
    count = state.receiving_count
    while count < until:
        chain_key, message_key = kdf_ck(chain_key)
        skipped[(state.remote_ratchet_key, count)] = message_key
        count += 1
    while len(skipped) > MAX_SKIPPED_KEYS:
        del skipped[next(iter(skipped))]
    return replace(state, receiving_chain_key=chain_key, receiving_count=count, skipped=skipped)


def _dh_ratchet(state: RatchetState, header: RatchetHeader, rng: prim.Rng) -> RatchetState:
    """Spec §3.5 ``DHRatchet``."""
    root_key, receiving_chain_key = kdf_rk(
        state.root_key, prim.x25519(state.sending_key_pair.private, header.ratchet_key)
    )
    sending = X25519KeyPair.generate(rng)
    root_key, sending_chain_key = kdf_rk(root_key, prim.x25519(sending.private, header.ratchet_key))
    return replace(
        state,
        root_key=root_key,
        sending_key_pair=sending,
        remote_ratchet_key=header.ratchet_key,
        sending_chain_key=sending_chain_key,
        receiving_chain_key=receiving_chain_key,
        sending_count=0,
        receiving_count=0,
        previous_sending_count=state.sending_count,
    )


def decrypt(
    state: RatchetState, message: RatchetMessage, rng: prim.Rng = prim.default_rng
) -> tuple[RatchetState, bytes]:
    """Spec §3.5 ``RatchetDecrypt``; the input state is never modified.

    Args:
        state: Current state.
        message: Parsed ratchet message (untrusted).
        rng: Random source for a new ratchet key pair on a DH ratchet step.

    Returns:
        ``(new_state, plaintext)``; commit ``new_state`` only after this returns.

    Raises:
        InvalidMessage: authentication failure, replay, too many skipped keys or a
            low-order ratchet key. The caller's state stays valid and unchanged.
    """
    header = message.header
    lookup = (header.ratchet_key, header.message_number)
    stored_key = state.skipped.get(lookup)
    if stored_key is not None:
        plaintext = _open(state, header, stored_key, message.ciphertext)
        skipped = {k: v for k, v in state.skipped.items() if k != lookup}
        return replace(state, skipped=skipped), plaintext

    working = state
    if header.ratchet_key != state.remote_ratchet_key:
        working = _skip_message_keys(working, header.previous_chain_length)
        working = _dh_ratchet(working, header, rng)
    elif header.message_number < state.receiving_count:
        raise InvalidMessage()  # replay: this key was used or skipped and deleted
    working = _skip_message_keys(working, header.message_number)
    if working.receiving_chain_key is None:
        raise InvalidMessage()
    next_chain_key, message_key = kdf_ck(working.receiving_chain_key)
    plaintext = _open(working, header, message_key, message.ciphertext)
    working = replace(
        working, receiving_chain_key=next_chain_key, receiving_count=working.receiving_count + 1
    )
    return working, plaintext


def _open(
    state: RatchetState, header: RatchetHeader, message_key: bytes, ciphertext: bytes
) -> bytes:
    key, nonce = expand_message_key(message_key)
    return prim.aead_decrypt(key, nonce, ciphertext, _aead_associated_data(state, header))
