"""Group messages with sender keys: distribution, rotation, tampering, limits."""

from __future__ import annotations

import pytest
from crypto_testkit import DeterministicRng
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import GroupReceiver, GroupSender, InvalidMessage
from crypto.envelope import GroupMessage, parse_envelope
from crypto.sender_keys import MAX_SKIP


def _group(seed: bytes = b"group") -> tuple[GroupSender, list[GroupReceiver]]:
    sender = GroupSender.generate(DeterministicRng(seed))
    receivers = [GroupReceiver() for _ in range(3)]
    for receiver in receivers:
        assert receiver.add_distribution(sender.distribution()) == sender.key_id
    return sender, receivers


def test_one_ciphertext_for_all_members() -> None:
    sender, receivers = _group()
    envelope = sender.encrypt(b"Sortie au musee vendredi")
    assert all(r.decrypt(envelope) == b"Sortie au musee vendredi" for r in receivers)


def test_removed_member_cannot_decrypt_after_rotation() -> None:
    rng = DeterministicRng(b"rotation")
    sender, (kept, removed, _) = _group()
    sender = GroupSender.generate(rng)  # membership changed: new key, new id
    kept.add_distribution(sender.distribution())  # sent only to remaining members
    envelope = sender.encrypt(b"after removal")
    assert kept.decrypt(envelope) == b"after removal"
    with pytest.raises(InvalidMessage):
        removed.decrypt(envelope)
    # Even forcing the new key id onto the old chain does not help.
    forged = parse_envelope(envelope)
    assert isinstance(forged, GroupMessage)
    with pytest.raises(InvalidMessage):
        removed.decrypt(
            GroupMessage(
                list(removed.key_ids)[0], *(forged.iteration, forged.ciphertext, forged.signature)
            ).encode()
        )


def test_tampered_or_forged_group_message_rejected() -> None:
    sender, (receiver, *_) = _group()
    envelope = sender.encrypt(b"tamper")
    for index in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[index] ^= 0x80
        with pytest.raises(InvalidMessage):
            receiver.decrypt(bytes(tampered))
    # A member knows the chain key but not the signing key: cannot impersonate.
    impostor = GroupSender.from_dict({**sender.to_dict(), "signing_seed": "A" * 43})
    with pytest.raises(InvalidMessage):
        receiver.decrypt(impostor.encrypt(b"fake"))
    assert receiver.decrypt(envelope) == b"tamper"


def test_replay_skip_limit_and_out_of_order() -> None:
    sender, (receiver, *_) = _group()
    envelopes = [sender.encrypt(bytes([i])) for i in range(5)]
    assert receiver.decrypt(envelopes[3]) == b"\x03"
    assert receiver.decrypt(envelopes[1]) == b"\x01"
    with pytest.raises(InvalidMessage):
        receiver.decrypt(envelopes[3])
    with pytest.raises(InvalidMessage):
        receiver.decrypt(envelopes[1])
    for _ in range(MAX_SKIP + 1):
        sender.encrypt(b"lost")
    before = receiver.to_dict()
    with pytest.raises(InvalidMessage):
        receiver.decrypt(sender.encrypt(b"too far"))
    assert receiver.to_dict() == before
    assert receiver.decrypt(envelopes[4]) == b"\x04"


def test_late_joiner_cannot_read_earlier_messages_and_state_round_trips() -> None:
    sender, _ = _group()
    early = sender.encrypt(b"early")
    late = GroupReceiver()
    late.add_distribution(sender.distribution())
    with pytest.raises(InvalidMessage):
        late.decrypt(early)
    restored = GroupReceiver.from_dict(late.to_dict())
    restored_sender = GroupSender.from_dict(sender.to_dict())
    assert restored.decrypt(restored_sender.encrypt(b"now")) == b"now"
    assert sender.distribution() != b"" and "chain" not in repr(sender)


@settings(max_examples=50, deadline=None)
@given(order=st.permutations(list(range(12))), drop=st.sets(st.integers(0, 11)))
def test_any_delivery_order_decrypts(order: list[int], drop: set[int]) -> None:
    sender, (receiver, *_) = _group()
    envelopes = [sender.encrypt(f"m{i}".encode()) for i in range(12)]
    for i in order:
        if i not in drop:
            assert receiver.decrypt(envelopes[i]) == f"m{i}".encode()
