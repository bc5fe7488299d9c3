"""The keystore file: round trip, wrong passphrase, mode 0600, atomic replace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client import KeystoreError, WrongPassphrase
from client.keystore import MINIMAL, Keystore
from client.state import DeviceState
from crypto import DeviceKeys

NOW = 1_790_000_000


def state() -> DeviceState:
    return DeviceState("https://carnet.example", "dev1", "per1", DeviceKeys.generate(NOW, 5))


def test_round_trip_restores_the_device_state(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    original = state()
    original.mark_seen("env-1")
    original.pending["c1"] = '{"type":"send"}'
    Keystore.create(path, "pass phrase", original.to_dict(), MINIMAL)
    _, data = Keystore.open(path, "pass phrase")
    restored = DeviceState.from_dict(data)
    assert restored.to_dict() == original.to_dict()
    assert restored.keys.identity.public == original.keys.identity.public
    assert "env-1" in restored.seen


def test_the_file_holds_no_key_material_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    original = state()
    Keystore.create(path, "pass phrase", original.to_dict(), MINIMAL)
    raw = path.read_text()
    assert original.to_dict()["keys"]["identity_seed"] not in raw
    assert "dev1" not in raw and "carnet.example" not in raw
    outer = json.loads(raw)
    assert outer["kdf"]["alg"] == "argon2id13"
    assert outer["kdf"]["opslimit"] == MINIMAL.opslimit


def test_wrong_passphrase_is_a_clear_client_error(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    Keystore.create(path, "right", state().to_dict(), MINIMAL)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Keystore.open(path, "wrong")


def test_a_modified_file_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    Keystore.create(path, "right", state().to_dict(), MINIMAL)
    outer = json.loads(path.read_text())
    sealed = outer["secretbox"]
    outer["secretbox"] = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    path.write_text(json.dumps(outer))
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, "right")


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"format": "other"}'])
def test_not_a_keystore(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "me.keystore"
    path.write_bytes(content)
    with pytest.raises(KeystoreError) as info:
        Keystore.open(path, "x")
    assert not isinstance(info.value, WrongPassphrase)


def test_missing_file_and_existing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="no keystore"):
        Keystore.open(tmp_path / "absent", "x")
    path = tmp_path / "me.keystore"
    Keystore.create(path, "x", state().to_dict(), MINIMAL)
    with pytest.raises(KeystoreError, match="already exists"):
        Keystore.create(path, "x", state().to_dict(), MINIMAL)
    with pytest.raises(KeystoreError, match="empty"):
        Keystore.create(tmp_path / "other", "", state().to_dict(), MINIMAL)


def test_file_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    previous = os.umask(0)
    try:
        keystore = Keystore.create(path, "x", state().to_dict(), MINIMAL)
        assert path.stat().st_mode & 0o777 == 0o600
        keystore.save(state().to_dict())
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)


def test_save_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "me.keystore"
    keystore = Keystore.create(path, "x", state().to_dict(), MINIMAL)
    before = path.stat().st_ino
    with open(path, "rb") as old_reader:
        old_content = path.read_bytes()
        updated = state()
        updated.failures = 7
        keystore.save(updated.to_dict())
        # A reader that opened the old file still sees it whole: a new file was
        # renamed over the name, nothing was rewritten in place.
        assert old_reader.read() == old_content
    assert path.stat().st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.keystore"]
    _, data = Keystore.open(path, "x")
    assert data["failures"] == 7


def test_malformed_state_is_a_keystore_error() -> None:
    with pytest.raises(KeystoreError):
        DeviceState.from_dict({"version": 1})
    with pytest.raises(KeystoreError):
        DeviceState.from_dict({**state().to_dict(), "version": 99})
