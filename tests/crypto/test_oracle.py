"""Cross-check against independent implementations: Syndace's ``x3dh`` and
``doubleratchet`` 1.3.0 (test-only dependencies), configured with our primitives.

Configuration of the oracles (read from their source):

* x3dh ``BaseState`` with ``IdentityKeyFormat.ED_25519``, ``HashFunction.SHA_256``,
  info ``X3DH_INFO``; ``_encode_public_key`` returns the raw key for Ed25519 identity
  keys (our AD) and ``SIGNED_PREKEY_CONTEXT || key`` for Curve25519 keys (what the
  signed prekey signature covers). Its KDF is HKDF(F || KM), salt zeros, like ours.
* doubleratchet ``DoubleRatchet`` with the recommended Curve25519 DH ratchet, the
  recommended HKDF root chain (SHA-256, info ``RATCHET_INFO``), the recommended
  separate-HMACs message chain (SHA-256, constant ``0x02 0x01`` → next chain key =
  HMAC(ck, 0x02), message key = HMAC(ck, 0x01)), our AEAD (XChaCha20-Poly1305 keyed by
  HKDF of the message key) and our associated data ``AD || 0x01 || dh || pn || n``.

With that, the two implementations interoperate message by message in both
directions, which checks X3DH, KDF_RK, KDF_CK, the DH ratchet, skipped keys and the
AEAD framing against code we did not write.
"""

from __future__ import annotations

import struct

import pytest
from crypto_testkit import DeterministicRng
from doubleratchet import aead as dr_aead
from doubleratchet import double_ratchet as dr
from doubleratchet.kdf_chain import KDFChain
from doubleratchet.recommended import (
    HashFunction as DRHash,
)
from doubleratchet.recommended import (
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)
from doubleratchet.types import EncryptedMessage
from doubleratchet.types import Header as DRHeader
from x3dh import base_state as x3dh_base
from x3dh import models as x3dh_models
from x3dh.crypto_provider import HashFunction as X3DHHash
from x3dh.types import Bundle, IdentityKeyFormat, SecretType
from x3dh.types import Header as X3DHHeader

from crypto import DeviceKeys, InvalidMessage, PreKeyBundle, accept_session, initiate_session
from crypto.envelope import PreKeyMessage, RatchetHeader, RatchetMessage, parse_envelope
from crypto.hazmat import primitives as prim
from crypto.hazmat import x3dh
from crypto.hazmat.kdf import RATCHET_INFO, X3DH_INFO, expand_message_key, kdf_ck, kdf_rk
from crypto.keys import SIGNED_PREKEY_CONTEXT


class OracleX3DH(x3dh_base.BaseState):
    @staticmethod
    def _encode_public_key(key_format: IdentityKeyFormat, pub: bytes) -> bytes:
        if key_format is IdentityKeyFormat.CURVE_25519:
            return SIGNED_PREKEY_CONTEXT + pub
        return pub


class RootKDF(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return RATCHET_INFO


class ChainKDF(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256


class OurAEAD(dr_aead.AEAD):
    @staticmethod
    async def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
        aead_key, nonce = expand_message_key(key)
        return prim.aead_encrypt(aead_key, nonce, plaintext, associated_data)

    @staticmethod
    async def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
        aead_key, nonce = expand_message_key(key)
        try:
            return prim.aead_decrypt(aead_key, nonce, ciphertext, associated_data)
        except InvalidMessage:
            raise dr_aead.AuthenticationFailedException() from None


class OracleRatchet(dr.DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: DRHeader) -> bytes:
        return (
            associated_data
            + b"\x01"
            + header.ratchet_pub
            + struct.pack(">II", header.previous_sending_chain_length, header.sending_chain_length)
        )


RATCHET_CONFIG = {
    "diffie_hellman_ratchet_class": diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    "root_chain_kdf": RootKDF,
    "message_chain_kdf": ChainKDF,
    "message_chain_constant": b"\x02\x01",
    "dos_protection_threshold": 1000,
    "max_num_skipped_message_keys": 2000,
    "aead": OurAEAD,
}


def _oracle_state_for(keys: DeviceKeys) -> OracleX3DH:
    """An oracle X3DH state holding *our* device's private keys."""
    model = x3dh_models.BaseStateModel(
        identity_key=x3dh_models.IdentityKeyPairModel(
            secret=keys.identity.seed, secret_type=SecretType.SEED
        ),
        signed_pre_key=x3dh_models.SignedPreKeyPairModel(
            priv=keys.signed_prekey.key_pair.private,
            sig=keys.signed_prekey.signature,
            timestamp=0,
        ),
        old_signed_pre_key=None,
        pre_keys=frozenset(k.key_pair.private for k in keys.one_time_prekeys),
    )
    return OracleX3DH.from_model(model, IdentityKeyFormat.ED_25519, X3DHHash.SHA_256, X3DH_INFO)


def _to_envelope(message: EncryptedMessage) -> RatchetMessage:
    h = message.header
    header = RatchetHeader(h.ratchet_pub, h.previous_sending_chain_length, h.sending_chain_length)
    return RatchetMessage(header, message.ciphertext)


def _to_oracle(message: RatchetMessage) -> EncryptedMessage:
    h = message.header
    return EncryptedMessage(
        header=DRHeader(h.ratchet_key, h.previous_chain_length, h.message_number),
        ciphertext=message.ciphertext,
    )


async def test_kdf_chain_steps_match() -> None:
    rng = DeterministicRng(b"kdf")
    root, dh_output, chain = rng(32), rng(32), rng(32)
    oracle_root = KDFChain.create(RootKDF, root)
    assert await oracle_root.step(dh_output, 32) == kdf_rk(root, dh_output)[1]
    assert oracle_root.model.key == kdf_rk(root, dh_output)[0]
    oracle_chain = KDFChain.create(ChainKDF, chain)
    ours = chain
    for _ in range(5):
        ours, message_key = kdf_ck(ours)
        assert await oracle_chain.step(b"\x02\x01", 32) == message_key
        assert oracle_chain.model.key == ours


@pytest.mark.parametrize("with_one_time_prekey", [True, False])
async def test_x3dh_we_initiate_oracle_responds(with_one_time_prekey: bool) -> None:
    rng = DeterministicRng(b"x3dh-1")
    alice, bob = DeviceKeys.generate(0, 1, rng), DeviceKeys.generate(0, 1, rng)
    ours = x3dh.initiate(alice.identity, bob.bundle(1 if with_one_time_prekey else None), rng)
    header = X3DHHeader(
        identity_key=alice.identity.public,
        ephemeral_key=ours.ephemeral_key,
        signed_pre_key=bob.signed_prekey.key_pair.public,
        pre_key=bob.one_time_prekeys[0].key_pair.public if with_one_time_prekey else None,
    )
    secret, ad, _ = await _oracle_state_for(bob).get_shared_secret_passive(
        header, require_pre_key=False
    )
    assert (secret, ad) == (ours.shared_secret, ours.associated_data)


async def test_x3dh_oracle_initiates_we_respond_and_signatures_cross_verify() -> None:
    rng = DeterministicRng(b"x3dh-2")
    alice, bob = DeviceKeys.generate(0, 0, rng), DeviceKeys.generate(0, 1, rng)
    oracle_alice = _oracle_state_for(alice)
    ours_bundle = bob.bundle(1)
    secret, ad, header = await oracle_alice.get_shared_secret_active(
        Bundle(
            identity_key=ours_bundle.identity_key,
            signed_pre_key=ours_bundle.signed_prekey,
            signed_pre_key_sig=ours_bundle.signed_prekey_signature,  # oracle verifies ours
            pre_keys=frozenset({bob.one_time_prekeys[0].key_pair.public}),
        )
    )
    response = x3dh.respond(bob, header.identity_key, header.ephemeral_key, 0, 1)
    assert (response.shared_secret, response.associated_data) == (secret, ad)
    # A signature made by the oracle (XEdDSA code path) verifies with ours.
    oracle_bob = OracleX3DH.create(IdentityKeyFormat.ED_25519, X3DHHash.SHA_256, X3DH_INFO)
    b = oracle_bob.bundle
    PreKeyBundle(b.identity_key, 1, b.signed_pre_key, b.signed_pre_key_sig).verify()
    with pytest.raises(InvalidMessage):
        PreKeyBundle(b.identity_key, 1, b.signed_pre_key, bytes(64)).verify()


async def test_ratchet_interoperates_we_initiate() -> None:
    rng = DeterministicRng(b"dr-1")
    alice, bob = DeviceKeys.generate(0, 0, rng), DeviceKeys.generate(0, 0, rng)
    session = initiate_session(alice, bob.bundle(), rng)
    first = parse_envelope(session.encrypt(b"bonjour"))
    second = parse_envelope(session.encrypt(b"ca va ?"))
    assert isinstance(first, PreKeyMessage) and isinstance(second, PreKeyMessage)
    secret, ad, _ = await _oracle_state_for(bob).get_shared_secret_passive(
        X3DHHeader(alice.identity.public, first.ephemeral_key, bob.bundle().signed_prekey, None),
        require_pre_key=False,
    )
    oracle_bob, plaintext = await OracleRatchet.decrypt_initial_message(
        **RATCHET_CONFIG,
        shared_secret=secret,
        own_ratchet_priv=bob.signed_prekey.key_pair.private,
        message=_to_oracle(second.message),  # out of order: message 1 first
        associated_data=ad,
    )
    assert plaintext == b"ca va ?"
    assert await oracle_bob.decrypt_message(_to_oracle(first.message), ad) == b"bonjour"
    for round_number in range(3):
        replies = [
            await oracle_bob.encrypt_message(f"r{round_number}-{i}".encode(), ad) for i in range(3)
        ]
        for i in (2, 0, 1):
            envelope = _to_envelope(replies[i]).encode()
            assert session.decrypt(envelope) == f"r{round_number}-{i}".encode()
        for i in range(2):
            message = parse_envelope(session.encrypt(f"a{round_number}-{i}".encode()))
            assert isinstance(message, RatchetMessage)
            decrypted = await oracle_bob.decrypt_message(_to_oracle(message), ad)
            assert decrypted == f"a{round_number}-{i}".encode()


async def test_ratchet_interoperates_oracle_initiates() -> None:
    rng = DeterministicRng(b"dr-2")
    alice, bob = DeviceKeys.generate(0, 0, rng), DeviceKeys.generate(0, 1, rng)
    bundle = bob.bundle(1)
    secret, ad, header = await _oracle_state_for(alice).get_shared_secret_active(
        Bundle(
            bundle.identity_key,
            bundle.signed_prekey,
            bundle.signed_prekey_signature,
            frozenset({bundle.one_time_prekey}),
        )
    )
    oracle_alice, initial = await OracleRatchet.encrypt_initial_message(
        **RATCHET_CONFIG,
        shared_secret=secret,
        recipient_ratchet_pub=bundle.signed_prekey,
        message=b"message initial",
        associated_data=ad,
    )
    envelope = PreKeyMessage(
        header.identity_key,
        header.ephemeral_key,
        bundle.signed_prekey_id,
        1,
        _to_envelope(initial),
    ).encode()
    accepted = accept_session(bob, envelope, rng)
    assert accepted.plaintext == b"message initial" and accepted.used_one_time_prekey_id == 1
    session = accepted.session
    for round_number in range(3):
        reply = parse_envelope(session.encrypt(f"b{round_number}".encode()))
        assert isinstance(reply, RatchetMessage)
        assert await oracle_alice.decrypt_message(_to_oracle(reply), ad) == (
            f"b{round_number}".encode()
        )
        message = await oracle_alice.encrypt_message(f"a{round_number}".encode(), ad)
        assert session.decrypt(_to_envelope(message).encode()) == f"a{round_number}".encode()
