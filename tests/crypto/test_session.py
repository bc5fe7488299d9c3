"""Pairwise sessions: round trips, life cycle, misuse and failure cases."""

from __future__ import annotations

import dataclasses

import pytest
from crypto_testkit import DeterministicRng

from crypto import (
    CryptoUsageError,
    DeviceKeys,
    InvalidMessage,
    PreKeyBundle,
    Session,
    SessionState,
    accept_session,
    initiate_session,
)
from crypto.envelope import RatchetMessage, parse_envelope
from crypto.hazmat import ratchet
from crypto.session import TRANSITIONS, SessionEvent


def _pair(seed: bytes = b"pair") -> tuple[Session, Session, DeviceKeys]:
    rng = DeterministicRng(seed)
    alice, bob = DeviceKeys.generate(0, 2, rng), DeviceKeys.generate(0, 2, rng)
    a = initiate_session(alice, bob.bundle(1), rng)
    accepted = accept_session(bob, a.encrypt(b"hello"), rng)
    assert accepted.plaintext == b"hello"
    assert accepted.used_one_time_prekey_id == 1
    b = accepted.session
    assert a.decrypt(b.encrypt(b"hi")) == b"hi"
    return a, b, bob


def test_round_trip_and_life_cycle() -> None:
    rng = DeterministicRng(b"life")
    alice, bob = DeviceKeys.generate(0, 1, rng), DeviceKeys.generate(0, 1, rng)
    a = initiate_session(alice, bob.bundle(), rng)
    assert a.state is SessionState.PENDING
    first, second = a.encrypt(b"one"), a.encrypt(b"two")
    assert parse_envelope(second).__class__.__name__ == "PreKeyMessage"
    accepted = accept_session(bob, second, rng)  # the first one was "lost" so far
    assert accepted.used_one_time_prekey_id is None
    b = accepted.session
    assert b.state is SessionState.ESTABLISHED
    assert b.decrypt(first) == b"one"  # late prekey message of the same session
    assert a.decrypt(b.encrypt(b"three")) == b"three"
    assert a.state is SessionState.ESTABLISHED
    assert isinstance(parse_envelope(a.encrypt(b"four")), RatchetMessage)
    assert a.peer_identity_key == bob.identity.public
    assert b.peer_identity_key == alice.identity.public


def test_transition_table_and_illegal_moves() -> None:
    a, b, _ = _pair()
    assert TRANSITIONS[(SessionState.PENDING, SessionEvent.RECEIVE)] is SessionState.ESTABLISHED
    assert all(state is not SessionState.CLOSED for state, _ in TRANSITIONS)
    envelope = b.encrypt(b"x")
    a.close()
    assert a.state is SessionState.CLOSED
    with pytest.raises(CryptoUsageError):
        a.encrypt(b"x")
    with pytest.raises(CryptoUsageError):
        a.decrypt(envelope)
    with pytest.raises(CryptoUsageError):
        a.close()


def test_responder_cannot_send_before_receiving() -> None:
    rng = DeterministicRng(b"bob-first")
    bob = DeviceKeys.generate(0, 0, rng)
    state = ratchet.init_responder(bytes(32), bob.signed_prekey.key_pair, bytes(64))
    with pytest.raises(CryptoUsageError):
        ratchet.encrypt(state, b"x")


def test_wrong_key_cannot_decrypt() -> None:
    rng = DeterministicRng(b"wrong")
    alice, bob, eve = (DeviceKeys.generate(0, 1, rng) for _ in range(3))
    envelope = initiate_session(alice, bob.bundle(), rng).encrypt(b"secret")
    with pytest.raises(InvalidMessage):
        accept_session(eve, envelope, rng)
    # Same prekey ids but different private keys.
    eve_like_bob = dataclasses.replace(
        eve, signed_prekey=dataclasses.replace(eve.signed_prekey, key_id=bob.signed_prekey.key_id)
    )
    with pytest.raises(InvalidMessage):
        accept_session(eve_like_bob, envelope, rng)
    # A session with someone else cannot read it either.
    _, other, _ = _pair(b"other")
    with pytest.raises(InvalidMessage):
        other.decrypt(envelope)


def test_forged_signed_prekey_is_rejected() -> None:
    rng = DeterministicRng(b"forged")
    alice, bob, mallory = (DeviceKeys.generate(0, 1, rng) for _ in range(3))
    genuine = bob.bundle()
    forged = dataclasses.replace(genuine, signed_prekey=mallory.signed_prekey.key_pair.public)
    with pytest.raises(InvalidMessage):
        initiate_session(alice, forged, rng)
    resigned = dataclasses.replace(genuine, signed_prekey_signature=mallory.signed_prekey.signature)
    with pytest.raises(InvalidMessage):
        initiate_session(alice, resigned, rng)


def test_low_order_signed_prekey_is_rejected_even_if_signed() -> None:
    rng = DeterministicRng(b"low-order")
    alice, bob = DeviceKeys.generate(0, 0, rng), DeviceKeys.generate(0, 0, rng)
    from crypto.keys import SIGNED_PREKEY_CONTEXT

    low_order = bytes(32)
    bundle = PreKeyBundle(
        bob.identity.public, 7, low_order, bob.identity.sign(SIGNED_PREKEY_CONTEXT + low_order)
    )
    bundle.verify()
    with pytest.raises(InvalidMessage):
        initiate_session(alice, bundle, rng)


def test_replay_fails_and_leaves_state_unchanged() -> None:
    a, b, _ = _pair()
    envelope = a.encrypt(b"once")
    assert b.decrypt(envelope) == b"once"
    before = b.to_bytes()
    with pytest.raises(InvalidMessage):
        b.decrypt(envelope)
    assert b.to_bytes() == before
    # Replay of a message decrypted through a skipped key.
    e1, e2 = a.encrypt(b"1"), a.encrypt(b"2")
    assert b.decrypt(e2) == b"2" and b.decrypt(e1) == b"1"
    with pytest.raises(InvalidMessage):
        b.decrypt(e1)


def test_tampering_any_byte_fails_without_state_change() -> None:
    a, b, _ = _pair()
    envelope = a.encrypt(b"tamper me")
    before = b.to_bytes()
    for index in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidMessage):
            b.decrypt(bytes(tampered))
        assert b.to_bytes() == before
    assert b.decrypt(envelope) == b"tamper me"


def test_counter_jump_over_max_skip_is_rejected_without_state_change() -> None:
    a, b, _ = _pair()
    for _ in range(ratchet.MAX_SKIP + 1):
        a.encrypt(b"lost")
    too_far = a.encrypt(b"too far")
    before = b.to_bytes()
    with pytest.raises(InvalidMessage):
        b.decrypt(too_far)
    assert b.to_bytes() == before


def test_max_skip_exactly_is_accepted_and_total_cap_evicts_oldest() -> None:
    a, b, _ = _pair()
    envelopes = [a.encrypt(str(i).encode()) for i in range(ratchet.MAX_SKIP + 1)]
    assert b.decrypt(envelopes[-1]) == str(ratchet.MAX_SKIP).encode()
    assert len(b._ratchet.skipped) == ratchet.MAX_SKIP
    # New chain from Bob's reply, then another MAX_SKIP + MAX_SKIP/2 skipped keys on two chains.
    assert a.decrypt(b.encrypt(b"turn")) == b"turn"
    more = [a.encrypt(b"m") for _ in range(ratchet.MAX_SKIP + 1)]
    assert b.decrypt(more[-1]) == b"m"
    assert a.decrypt(b.encrypt(b"turn2")) == b"turn2"
    last = [a.encrypt(b"l") for _ in range(ratchet.MAX_SKIP // 2 + 1)]
    assert b.decrypt(last[-1]) == b"l"
    assert len(b._ratchet.skipped) == ratchet.MAX_SKIPPED_KEYS
    with pytest.raises(InvalidMessage):
        b.decrypt(envelopes[0])  # oldest, evicted
    assert b.decrypt(envelopes[-2]) == str(ratchet.MAX_SKIP - 1).encode()
    assert b.decrypt(more[0]) == b"m"


def test_serialisation_round_trip_and_repr_hides_secrets() -> None:
    a, b, bob = _pair()
    restored = Session.from_bytes(b.to_bytes())
    assert restored.to_dict() == b.to_dict()
    assert restored.decrypt(a.encrypt(b"after restore")) == b"after restore"
    text = repr(b._ratchet) + repr(bob) + repr(b)
    assert bob.identity.seed.hex() not in text
    assert b._ratchet.root_key.hex() not in text
    assert bob.signed_prekey.key_pair.private.hex() not in text
    assert DeviceKeys.from_dict(bob.to_dict()) == bob
    for bad in (b"", b"[]", b"{}", b'{"version": 2}', b"\xff"):
        with pytest.raises(InvalidMessage):
            Session.from_bytes(bad)


def test_oversized_plaintext_is_refused() -> None:
    a, _, _ = _pair()
    with pytest.raises(CryptoUsageError):
        a.encrypt(bytes(65537))


def test_device_keys_rotation_and_replenishment() -> None:
    rng = DeterministicRng(b"rotate")
    alice, bob = DeviceKeys.generate(0, 1, rng), DeviceKeys.generate(0, 1, rng)
    session = initiate_session(alice, bob.bundle(1), rng)
    late = session.encrypt(b"sent before rotation")
    bob = bob.with_rotated_signed_prekey(now=86400, rng=rng).with_new_one_time_prekeys(2, rng)
    assert bob.signed_prekey.created_at == 86400
    assert len({k.key_id for k in bob.one_time_prekeys}) == 3
    accepted = accept_session(bob, late, rng)  # previous signed prekey still works
    bob = bob.without_one_time_prekey(accepted.used_one_time_prekey_id or 0)
    assert bob.find_one_time_prekey(1) is None
    with pytest.raises(InvalidMessage):
        accept_session(bob, late, rng)  # one-time prekey consumed
