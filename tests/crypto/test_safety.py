"""Safety numbers: symmetric, 60 digits, change with either key, QR comparison."""

from __future__ import annotations

from crypto_testkit import DeterministicRng

from crypto import IdentityKeyPair, safety_number


def test_safety_number_properties() -> None:
    rng = DeterministicRng(b"safety")
    alice, bob, mallory = (IdentityKeyPair.generate(rng).public for _ in range(3))
    ab = safety_number(alice, "alice", bob, "bob")
    ba = safety_number(bob, "bob", alice, "alice")
    assert ab.digits == ba.digits and len(ab.digits) == 60 and ab.digits.isdigit()
    assert len(ab.formatted().split(" ")) == 12
    assert all(len(group) == 5 for group in ab.formatted().split(" "))
    assert ab.matches_qr(ba.qr_payload()) and ba.matches_qr(ab.qr_payload())
    assert not ab.matches_qr(ab.qr_payload())
    assert not ab.matches_qr(ba.qr_payload()[:-1])
    mitm = safety_number(alice, "alice", mallory, "bob")
    assert mitm.digits != ab.digits
    assert not ab.matches_qr(safety_number(mallory, "bob", alice, "alice").qr_payload())
    assert safety_number(mallory, "alice", bob, "bob").digits != ab.digits
