"""Envelope parsing: round trips, rejection of malformed input, fuzzing."""

from __future__ import annotations

import pytest
from crypto_testkit import DeterministicRng
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import DeviceKeys, GroupReceiver, InvalidMessage, initiate_session
from crypto.envelope import (
    MAX_CIPHERTEXT_SIZE,
    GroupMessage,
    PreKeyMessage,
    RatchetHeader,
    RatchetMessage,
    SenderKeyDistribution,
    parse_envelope,
)
from crypto.errors import CryptoUsageError

HEADER = RatchetHeader(bytes(range(32)), 3, 4)
SAMPLES = [
    RatchetMessage(HEADER, b"c" * 16),
    PreKeyMessage(b"i" * 32, b"e" * 32, 7, None, RatchetMessage(HEADER, b"c" * 20)),
    PreKeyMessage(b"i" * 32, b"e" * 32, 7, 9, RatchetMessage(HEADER, b"c" * 20)),
    GroupMessage(5, 6, b"g" * 17, b"s" * 64),
    SenderKeyDistribution(5, 6, b"k" * 32, b"p" * 32),
]


@pytest.mark.parametrize("envelope", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_and_every_truncation_rejected(envelope: object) -> None:
    data = envelope.encode()  # type: ignore[attr-defined]
    assert parse_envelope(data) == envelope
    for size in range(len(data)):
        with pytest.raises(InvalidMessage):
            parse_envelope(data[:size])
    with pytest.raises(InvalidMessage):
        parse_envelope(data + b"\x00")
    for version in (0x00, 0x02, 0xFF):
        with pytest.raises(InvalidMessage):
            parse_envelope(bytes([version]) + data[1:])


def test_unknown_type_bad_flag_and_oversize_rejected() -> None:
    data = SAMPLES[1].encode()
    for kind in (0x00, 0x05, 0xFF):
        with pytest.raises(InvalidMessage):
            parse_envelope(bytes([1, kind]) + data[2:])
    bad_flag = bytearray(data)
    bad_flag[70] = 2
    with pytest.raises(InvalidMessage):
        parse_envelope(bytes(bad_flag))
    id_without_flag = bytearray(data)
    id_without_flag[74] = 1
    with pytest.raises(InvalidMessage):
        parse_envelope(bytes(id_without_flag))
    big = RatchetMessage(HEADER, bytes(MAX_CIPHERTEXT_SIZE)).encode()
    assert parse_envelope(big)
    oversized = big[:42] + (MAX_CIPHERTEXT_SIZE + 1).to_bytes(4, "big") + big[46:] + b"x"
    with pytest.raises(InvalidMessage):
        parse_envelope(oversized)
    with pytest.raises(InvalidMessage):
        parse_envelope(big[:42] + (15).to_bytes(4, "big") + bytes(15))  # shorter than a tag
    with pytest.raises(InvalidMessage):
        parse_envelope(b"x" * 1_000_000)
    with pytest.raises(InvalidMessage):
        parse_envelope("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("envelope", "last_key_byte"),
    [(SAMPLES[0], 33), (SAMPLES[1], 65), (SAMPLES[1], 106)],
    ids=["ratchet key", "ephemeral key", "prekey's ratchet key"],
)
def test_an_x25519_key_with_its_masked_bit_set_is_rejected(
    envelope: object, last_key_byte: int
) -> None:
    """RFC 7748 §5 masks that bit: the same key, so a flipped bit must not pass."""
    data = bytearray(envelope.encode())  # type: ignore[attr-defined]
    assert not data[last_key_byte] & 0x80
    data[last_key_byte] |= 0x80
    with pytest.raises(InvalidMessage):
        parse_envelope(bytes(data))
    with pytest.raises(CryptoUsageError):
        RatchetHeader(bytes(31) + b"\x80", 0, 0)


_RNG = DeterministicRng(b"fuzz")
_ALICE, _BOB = DeviceKeys.generate(0, 0, _RNG), DeviceKeys.generate(0, 0, _RNG)
_SESSION = initiate_session(_ALICE, _BOB.bundle(), _RNG)
_VALID = _SESSION.encrypt(b"seed")


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=300) | st.binary(max_size=200).map(lambda b: b"\x01" + b))
def test_fuzzed_bytes_only_ever_raise_invalid_message(data: bytes) -> None:
    try:
        parse_envelope(data)
    except InvalidMessage:
        pass
    receiver = GroupReceiver()
    with pytest.raises(InvalidMessage):
        receiver.decrypt(data)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(_VALID) - 1), value=st.integers(0, 255))
def test_mutated_valid_envelope_is_rejected_by_session(index: int, value: int) -> None:
    mutated = bytearray(_VALID)
    if mutated[index] == value:
        return
    mutated[index] = value
    from crypto import accept_session

    with pytest.raises(InvalidMessage):
        accept_session(_BOB, bytes(mutated), _RNG)
