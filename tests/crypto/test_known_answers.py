"""Known-answer vectors (tests/vectors/carnet_e2e_v1.json) and the doc's worked example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from crypto_testkit import build_known_answer_vectors, load_vectors

from crypto import (
    AbuseReport,
    DeviceKeys,
    FrankingKeyring,
    GroupReceiver,
    PreKeyBundle,
    ServerFrankingKey,
    accept_session,
    open_franked,
    safety_number,
    verify_report,
)
from crypto.envelope import PreKeyMessage, parse_envelope
from crypto.hazmat.kdf import expand_message_key, kdf_ck, kdf_rk, x3dh_kdf

VECTORS = load_vectors("carnet_e2e_v1.json")
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol-e2e.md"


def test_vectors_file_is_reproduced_exactly() -> None:
    assert build_known_answer_vectors() == VECTORS


def test_kdf_vectors() -> None:
    v = {k: {n: bytes.fromhex(x) for n, x in d.items()} for k, d in VECTORS["kdf"].items()}
    assert kdf_rk(v["kdf_rk"]["rk"], v["kdf_rk"]["dh"]) == (
        v["kdf_rk"]["new_rk"],
        v["kdf_rk"]["ck"],
    )
    assert kdf_ck(v["kdf_ck"]["ck"]) == (v["kdf_ck"]["next_ck"], v["kdf_ck"]["mk"])
    mk = v["message_key"]
    assert expand_message_key(mk["mk"]) == (mk["key"], mk["nonce"])
    assert x3dh_kdf(v["x3dh_kdf"]["km"]) == v["x3dh_kdf"]["sk"]


def test_stored_envelopes_decrypt_with_stored_keys() -> None:
    bob = DeviceKeys.from_dict(VECTORS["bob_keys"])
    alice = DeviceKeys.from_dict(VECTORS["alice_keys"])
    assert PreKeyBundle.from_dict(VECTORS["bob_bundle"]) == bob.bundle(1)
    accepted = accept_session(bob, bytes.fromhex(VECTORS["prekey_message"]))
    assert accepted.plaintext == b"Bonjour Madame Martin"
    assert accepted.used_one_time_prekey_id == 1
    assert accepted.session.peer_identity_key == alice.identity.public
    receiver = GroupReceiver()
    receiver.add_distribution(bytes.fromhex(VECTORS["sender_key_distribution"]))
    group = receiver.decrypt(bytes.fromhex(VECTORS["group_message"]))
    assert group == b"Reunion parents-professeurs jeudi 18h"
    f = VECTORS["franking"]
    body, fk = open_franked(bytes.fromhex(f["payload"]), bytes.fromhex(f["commitment"]))
    keyring = FrankingKeyring(ServerFrankingKey(f["server_key_id"], bytes.fromhex(f["server_key"])))
    report = AbuseReport(
        body,
        fk,
        bytes.fromhex(f["commitment"]),
        bytes.fromhex(f["stamp"]),
        f["sender_device_id"],
        f["conversation_id"],
        f["timestamp_ms"],
    )
    verify_report(keyring, report)
    s = VECTORS["safety_number"]
    number = safety_number(alice.identity.public, s["alice_id"], bob.identity.public, s["bob_id"])
    assert number.digits == s["digits"] and number.qr_payload().hex() == s["qr_alice"]


def _doc_vector(name: str) -> str:
    match = re.search(rf"<!-- vector:{name} -->\n```hex\n([0-9a-f\n]+)```", DOC.read_text())
    assert match, f"vector {name} missing from {DOC}"
    return match.group(1).replace("\n", "")


@pytest.mark.parametrize(
    "name", ["prekey_message", "ratchet_message", "group_message", "sender_key_distribution"]
)
def test_doc_hex_examples_match_vector_file(name: str) -> None:
    assert _doc_vector(name) == VECTORS[name]


def test_doc_field_table_matches_parser() -> None:
    message = parse_envelope(bytes.fromhex(_doc_vector("prekey_message")))
    assert isinstance(message, PreKeyMessage)
    text = DOC.read_text()
    for value in (
        message.identity_key.hex(),
        message.ephemeral_key.hex(),
        message.message.header.ratchet_key.hex(),
        message.message.ciphertext.hex(),
    ):
        assert f"`{value}`" in text
    assert message.signed_prekey_id == 0 and message.one_time_prekey_id == 1
