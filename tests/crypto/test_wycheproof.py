"""Wycheproof vectors (tests/vectors/wycheproof/, Apache-2.0) against our wrappers.

Decision on "acceptable" X25519 cases: we compute them like any other case, except
that an all-zero shared secret (small-order / low-order public keys, flags
``LowOrderPublic`` / ``ZeroSharedSecret``) must be *rejected* with InvalidMessage.
Twist points and non-canonical encodings are accepted and must give the expected
output (RFC 7748 §5 mandates masking the top bit, libsodium does).
"""

from __future__ import annotations

from typing import Any

import pytest
from crypto_testkit import load_vectors

from crypto.errors import CryptoError, InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import constant_time_equal, hkdf_sha256, hmac_sha256


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = load_vectors(f"wycheproof/{name}")
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def _ids(cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    return [f"tc{test['tcId']}" for _, test in cases]


X25519 = _cases("x25519_test.json")
ED25519 = _cases("ed25519_test.json")
XCHACHA = _cases("xchacha20_poly1305_test.json")
HKDF = _cases("hkdf_sha256_test.json")
HMAC = _cases("hmac_sha256_test.json")


def test_vector_files_are_not_empty() -> None:
    assert len(X25519) == 518 and len(ED25519) == 151 and len(XCHACHA) == 315
    assert len(HKDF) == 86 and len(HMAC) == 174


@pytest.mark.parametrize(("group", "test"), X25519, ids=_ids(X25519))
def test_x25519(group: dict[str, Any], test: dict[str, Any]) -> None:
    private, public = bytes.fromhex(test["private"]), bytes.fromhex(test["public"])
    shared = bytes.fromhex(test["shared"])
    if shared == bytes(32):
        assert test["result"] == "acceptable"
        with pytest.raises(InvalidMessage):
            prim.x25519(private, public)
    else:
        assert test["result"] in ("valid", "acceptable")
        assert prim.x25519(private, public) == shared


@pytest.mark.parametrize(("group", "test"), ED25519, ids=_ids(ED25519))
def test_ed25519_verify(group: dict[str, Any], test: dict[str, Any]) -> None:
    public = bytes.fromhex(group["publicKey"]["pk"])
    message, signature = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
    if test["result"] == "valid":
        prim.ed25519_verify(public, message, signature)
    else:
        with pytest.raises(InvalidMessage):
            prim.ed25519_verify(public, message, signature)


def test_ed25519_sign_matches_rfc8032_test_1() -> None:
    # RFC 8032 §7.1 TEST 1 (the Wycheproof file has no private keys).
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public, secret = prim.ed25519_keypair_from_seed(seed)
    assert public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert prim.ed25519_sign(secret, b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


@pytest.mark.parametrize(("group", "test"), XCHACHA, ids=_ids(XCHACHA))
def test_xchacha20_poly1305(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, nonce = bytes.fromhex(test["key"]), bytes.fromhex(test["iv"])
    aad, message = bytes.fromhex(test["aad"]), bytes.fromhex(test["msg"])
    sealed = bytes.fromhex(test["ct"] + test["tag"])
    if test["result"] == "valid":
        assert prim.aead_encrypt(key, nonce, message, aad) == sealed
        assert prim.aead_decrypt(key, nonce, sealed, aad) == message
    else:
        with pytest.raises(CryptoError):
            prim.aead_decrypt(key, nonce, sealed, aad)


@pytest.mark.parametrize(("group", "test"), HKDF, ids=_ids(HKDF))
def test_hkdf_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    ikm, salt, info = (bytes.fromhex(test[k]) for k in ("ikm", "salt", "info"))
    if test["result"] == "valid":
        assert hkdf_sha256(ikm, salt, info, test["size"]).hex() == test["okm"]
    else:
        with pytest.raises(CryptoError):
            hkdf_sha256(ikm, salt, info, test["size"])


@pytest.mark.parametrize(("group", "test"), HMAC, ids=_ids(HMAC))
def test_hmac_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, message, tag = (bytes.fromhex(test[k]) for k in ("key", "msg", "tag"))
    # Truncated-tag groups: compare our full tag's prefix, as a verifier of that size would.
    ours = hmac_sha256(key, message)[: group["tagSize"] // 8]
    assert constant_time_equal(ours, tag) is (test["result"] == "valid")
