"""Message franking: commitment, server stamp, report verification, key rotation."""

from __future__ import annotations

import dataclasses

import pytest
from crypto_testkit import DeterministicRng

from crypto import (
    AbuseReport,
    DeviceKeys,
    FrankingKeyring,
    InvalidMessage,
    ServerFrankingKey,
    accept_session,
    frank,
    initiate_session,
    open_franked,
    verify_report,
)

NOW = 1_760_000_000_000


def _reported(keyring: FrankingKeyring) -> AbuseReport:
    rng = DeterministicRng(b"franking")
    alice, bob = DeviceKeys.generate(0, 0, rng), DeviceKeys.generate(0, 0, rng)
    franked = frank(b"message injurieux", rng)
    envelope = initiate_session(alice, bob.bundle(), rng).encrypt(franked.payload)
    stamp = keyring.stamp(franked.commitment, "device-alice", "conv-42", NOW)
    payload = accept_session(bob, envelope, rng).plaintext
    body, franking_key = open_franked(payload, franked.commitment)
    assert body == b"message injurieux"
    return AbuseReport(
        body, franking_key, franked.commitment, stamp, "device-alice", "conv-42", NOW
    )


def _keyring(key_id: int = 1) -> FrankingKeyring:
    return FrankingKeyring(ServerFrankingKey.generate(key_id, DeterministicRng(b"srv%d" % key_id)))


def test_genuine_report_verifies() -> None:
    keyring = _keyring()
    verify_report(keyring, _reported(keyring))


def test_any_tampering_fails() -> None:
    keyring = _keyring()
    report = _reported(keyring)
    for i in range(len(report.body)):
        body = bytearray(report.body)
        body[i] ^= 1
        with pytest.raises(InvalidMessage):
            verify_report(keyring, dataclasses.replace(report, body=bytes(body)))
    for change in (
        {"sender_device_id": "device-bob"},
        {"conversation_id": "conv-43"},
        {"timestamp_ms": NOW + 1},
        {"franking_key": bytes(32)},
        {"commitment": bytes(32)},
        {"stamp": report.stamp[:-1] + bytes([report.stamp[-1] ^ 1])},
        {"stamp": report.stamp[:35]},
    ):
        with pytest.raises(InvalidMessage):
            verify_report(keyring, dataclasses.replace(report, **change))  # type: ignore[arg-type]


def test_commitment_is_checked_by_the_recipient() -> None:
    franked = frank(b"hello", DeterministicRng(b"c"))
    with pytest.raises(InvalidMessage):
        open_franked(franked.payload, bytes(32))
    with pytest.raises(InvalidMessage):
        open_franked(franked.payload[:31], franked.commitment)


def test_rotation_old_key_verifies_dropped_key_does_not() -> None:
    keyring = _keyring(1)
    report = _reported(keyring)
    rotated = keyring.rotated(ServerFrankingKey.generate(2, DeterministicRng(b"k2")))
    verify_report(rotated, report)  # previous key kept
    assert rotated.stamp(report.commitment, "d", "c", 0)[:4] == (2).to_bytes(4, "big")
    twice = rotated.rotated(ServerFrankingKey.generate(3, DeterministicRng(b"k3")))
    with pytest.raises(InvalidMessage):
        verify_report(twice, report)  # key 1 dropped
    assert "secret" not in repr(ServerFrankingKey(1, b"s" * 32)).replace("secret=", "")
    assert (b"s" * 32).hex() not in repr(ServerFrankingKey(1, b"s" * 32))
