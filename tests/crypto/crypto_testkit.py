"""Shared helpers for tests/crypto: a deterministic rng and a pair of linked devices."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


class DeterministicRng:
    """``rng(n)`` returning SHAKE-256(seed || counter) so known-answer tests are exact."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, size: int) -> bytes:
        out = hashlib.shake_256(self.seed + self.counter.to_bytes(8, "big")).digest(size)
        self.counter += 1
        return out


class ScriptedRng:
    """``rng(n)`` returning pre-recorded values in order (to feed both us and an oracle)."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = list(values)

    def __call__(self, size: int) -> bytes:
        value = self.values.pop(0)
        assert len(value) == size
        return value


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def build_known_answer_vectors() -> dict[str, Any]:
    """Build tests/vectors/carnet_e2e_v1.json from fixed inputs (deterministic rng).

    Run ``.venv/bin/python tests/crypto/crypto_testkit.py`` to rewrite the file; the
    test suite checks that the checked-in file still matches.
    """
    from crypto import (
        DeviceKeys,
        FrankingKeyring,
        GroupSender,
        ServerFrankingKey,
        accept_session,
        frank,
        initiate_session,
        safety_number,
    )
    from crypto.hazmat.kdf import expand_message_key, kdf_ck, kdf_rk, x3dh_kdf

    rng = DeterministicRng(b"carnet-kat-v1")
    rk, dh, ck, mk, km = rng(32), rng(32), rng(32), rng(32), rng(128)
    alice = DeviceKeys.generate(1_760_000_000, 1, rng)
    bob = DeviceKeys.generate(1_760_000_000, 1, rng)
    session = initiate_session(alice, bob.bundle(1), rng)
    prekey_message = session.encrypt(b"Bonjour Madame Martin")
    accepted = accept_session(bob, prekey_message, rng)
    ratchet_message = accepted.session.encrypt(b"Bonjour !")
    sender = GroupSender.generate(rng)
    distribution = sender.distribution()
    group_message = sender.encrypt(b"Reunion parents-professeurs jeudi 18h")
    franked = frank(b"Bonjour Madame Martin", rng)
    server_key = ServerFrankingKey.generate(1, rng)
    stamp = FrankingKeyring(server_key).stamp(
        franked.commitment, "device-alice", "conv-42", 1_760_000_000_123
    )
    number = safety_number(alice.identity.public, "alice", bob.identity.public, "bob")
    new_rk, chain = kdf_rk(rk, dh)
    next_ck, message_key = kdf_ck(ck)
    aead_key, nonce = expand_message_key(mk)
    return {
        "description": "Carnet E2E v1 known answers; see docs/protocol-e2e.md §9",
        "kdf": {
            "kdf_rk": {"rk": rk.hex(), "dh": dh.hex(), "new_rk": new_rk.hex(), "ck": chain.hex()},
            "kdf_ck": {"ck": ck.hex(), "next_ck": next_ck.hex(), "mk": message_key.hex()},
            "message_key": {"mk": mk.hex(), "key": aead_key.hex(), "nonce": nonce.hex()},
            "x3dh_kdf": {"km": km.hex(), "sk": x3dh_kdf(km).hex()},
        },
        "alice_keys": alice.to_dict(),
        "bob_keys": bob.to_dict(),
        "bob_bundle": bob.bundle(1).to_dict(),
        "prekey_message": prekey_message.hex(),
        "ratchet_message": ratchet_message.hex(),
        "sender_key_distribution": distribution.hex(),
        "group_message": group_message.hex(),
        "franking": {
            "payload": franked.payload.hex(),
            "commitment": franked.commitment.hex(),
            "server_key_id": server_key.key_id,
            "server_key": server_key.secret.hex(),
            "sender_device_id": "device-alice",
            "conversation_id": "conv-42",
            "timestamp_ms": 1_760_000_000_123,
            "stamp": stamp.hex(),
        },
        "safety_number": {
            "alice_id": "alice",
            "bob_id": "bob",
            "digits": number.digits,
            "qr_alice": number.qr_payload().hex(),
        },
    }


if __name__ == "__main__":
    target = VECTORS / "carnet_e2e_v1.json"
    target.write_text(json.dumps(build_known_answer_vectors(), indent=2) + "\n")
    print(f"wrote {target}")
