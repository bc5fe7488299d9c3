"""Key value classes and the prekey bundle encoding."""

from __future__ import annotations

import dataclasses

import pytest
from crypto_testkit import DeterministicRng

from crypto import (
    CryptoUsageError,
    DeviceKeys,
    IdentityKeyPair,
    InvalidMessage,
    PreKeyBundle,
    verify_signed_prekey,
)
from crypto.encoding import b64url_encode
from crypto.keys import X25519KeyPair


def test_bundle_dict_round_trip_and_server_side_check() -> None:
    keys = DeviceKeys.generate(0, 2, DeterministicRng(b"bundle"))
    for otpk in (None, 2):
        bundle = keys.bundle(otpk)
        data = bundle.to_dict()
        assert PreKeyBundle.from_dict(data) == bundle
        verify_signed_prekey(
            data_bytes(data, "identity_key"), bundle.signed_prekey, bundle.signed_prekey_signature
        )
    data = keys.bundle(1).to_dict()
    for bad in (
        {**data, "identity_key": data["identity_key"] + "A"},
        {**data, "identity_key": data["identity_key"][:-1] + "="},
        {**data, "signed_prekey_id": -1},
        {**data, "signed_prekey_id": True},
        {**data, "extra": 1},
        {k: v for k, v in data.items() if k != "one_time_prekey"},
    ):
        with pytest.raises(InvalidMessage):
            PreKeyBundle.from_dict(bad)
    with pytest.raises(InvalidMessage):
        verify_signed_prekey(keys.identity.public, bytes(32), keys.signed_prekey.signature)
    with pytest.raises(CryptoUsageError):
        keys.bundle(99)


def data_bytes(data: dict[str, object], name: str) -> bytes:
    from crypto.encoding import b64url_decode

    return b64url_decode(data[name])


def test_sizes_checked_and_private_material_not_in_repr() -> None:
    with pytest.raises(CryptoUsageError):
        IdentityKeyPair(b"short")
    with pytest.raises(CryptoUsageError):
        X25519KeyPair(bytes(32), bytes(31))
    with pytest.raises(CryptoUsageError):
        X25519KeyPair(bytes(32), bytes(32))  # public does not match
    keys = DeviceKeys.generate(0, 1, DeterministicRng(b"repr"))
    text = repr(keys)
    for secret in (
        keys.identity.seed,
        keys.signed_prekey.key_pair.private,
        keys.one_time_prekeys[0].key_pair.private,
    ):
        assert secret.hex() not in text and b64url_encode(secret) not in text
        assert repr(secret) not in text
    with pytest.raises(CryptoUsageError):
        dataclasses.replace(keys.bundle(), signed_prekey_id=2**32)
