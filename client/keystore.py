"""The local keystore: one file, encrypted with a passphrase (docs/sdk.md, "Keystore").

File format (UTF-8 JSON, mode 0600)::

    {"format": "carnet-keystore", "version": 1,
     "kdf": {"alg": "argon2id13", "opslimit": int, "memlimit": int, "salt": b64url(16)},
     "secretbox": b64url(nonce (24) || XSalsa20-Poly1305 ciphertext)}

The key is ``Argon2id(passphrase, salt, opslimit, memlimit)`` (libsodium
``crypto_pwhash``, 32 bytes); the plaintext is the JSON of the device state
(:mod:`client.state`). The parameters are stored in the file, so a keystore made
with other limits still opens. The default is libsodium's MODERATE (3 passes,
256 MiB, about a second), paid once per unlock: the derived key stays in memory and
each save only re-encrypts with a fresh nonce. Tests pass :data:`MINIMAL`.

Writes are atomic: a temporary file in the same folder, created with mode 0600
(``O_EXCL``), written, fsynced, then ``os.replace``; a crash leaves the old file or
the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret

from client.errors import KeystoreError, WrongPassphrase
from crypto import InvalidMessage
from crypto.encoding import b64url_decode, b64url_encode

__all__ = ["INTERACTIVE", "MINIMAL", "MODERATE", "KdfLimits", "Keystore"]

FORMAT = "carnet-keystore"
VERSION = 1
KDF_ALG = "argon2id13"
SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES


@dataclass(frozen=True)
class KdfLimits:
    """Argon2id cost parameters (libsodium ``opslimit`` and ``memlimit`` in bytes)."""

    opslimit: int
    memlimit: int


MODERATE = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)
"""Default: 3 passes over 256 MiB."""
INTERACTIVE = KdfLimits(
    nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
)
"""2 passes over 64 MiB, for small machines."""
MINIMAL = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
"""libsodium's minimum: for tests and throw-away keystores (``carnet smoke``) only."""


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=limits.opslimit,
        memlimit=limits.memlimit,
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(f"cannot write the keystore {path}: {exc.strerror}") from None
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class Keystore:
    """An unlocked keystore file: holds the derived key, reads and writes the state."""

    def __init__(self, path: Path, key: bytes, salt: bytes, limits: KdfLimits) -> None:
        """Use :meth:`create` or :meth:`open` instead.

        Args:
            path: The file.
            key: The derived 32-byte key.
            salt: The Argon2id salt stored in the file.
            limits: The Argon2id limits stored in the file.
        """
        self.path = path
        self._box = nacl.secret.SecretBox(key)
        self._salt = salt
        self.limits = limits

    def __repr__(self) -> str:
        return f"<Keystore {self.path}>"

    @classmethod
    def create(
        cls, path: Path, passphrase: str, state: dict[str, Any], limits: KdfLimits = MODERATE
    ) -> Keystore:
        """Create a new keystore file (refuses to overwrite an existing one).

        Args:
            path: Where to write it.
            passphrase: The new passphrase (not empty).
            state: The JSON-able state to store.
            limits: Argon2id cost.

        Returns:
            The unlocked keystore.

        Raises:
            KeystoreError: empty passphrase, the file exists, or it cannot be written.
        """
        if not passphrase:
            raise KeystoreError("the passphrase must not be empty")
        if path.exists():
            raise KeystoreError(f"{path} already exists; refusing to overwrite a keystore")
        salt = secrets.token_bytes(SALT_SIZE)
        keystore = cls(path, _derive(passphrase, salt, limits), salt, limits)
        keystore.save(state)
        return keystore

    @classmethod
    def open(cls, path: Path, passphrase: str) -> tuple[Keystore, dict[str, Any]]:
        """Unlock a keystore file.

        Args:
            path: The file.
            passphrase: Its passphrase.

        Returns:
            The unlocked keystore and the stored state.

        Raises:
            WrongPassphrase: the passphrase does not decrypt it (or it was modified).
            KeystoreError: the file is missing or not a keystore.
        """
        try:
            outer = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise KeystoreError(f"no keystore at {path}") from None
        except (OSError, ValueError, UnicodeDecodeError):
            raise KeystoreError(f"{path} is not a Carnet keystore") from None
        try:
            if outer["format"] != FORMAT or outer["version"] != VERSION:
                raise KeystoreError(f"{path}: unsupported keystore format or version")
            kdf = outer["kdf"]
            if kdf["alg"] != KDF_ALG:
                raise KeystoreError(f"{path}: unsupported key derivation {kdf['alg']!r}")
            limits = KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
            salt = b64url_decode(kdf["salt"], SALT_SIZE)
            sealed = b64url_decode(outer["secretbox"])
        except (KeyError, TypeError, ValueError, InvalidMessage):
            raise KeystoreError(f"{path} is not a Carnet keystore") from None
        try:
            key = _derive(passphrase, salt, limits)
        except (nacl.exceptions.CryptoError, ValueError):
            raise KeystoreError(f"{path}: key derivation parameters out of range") from None
        keystore = cls(path, key, salt, limits)
        try:
            plaintext = keystore._box.decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase() from None
        try:
            state = json.loads(plaintext)
        except ValueError:
            raise KeystoreError(f"{path}: the decrypted state is not JSON") from None
        if not isinstance(state, dict):
            raise KeystoreError(f"{path}: the decrypted state is not an object")
        return keystore, state

    def save(self, state: dict[str, Any]) -> None:
        """Encrypt ``state`` with a fresh nonce and replace the file atomically.

        Args:
            state: The JSON-able state.

        Raises:
            KeystoreError: the file cannot be written.
        """
        plaintext = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        outer = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {
                "alg": KDF_ALG,
                "opslimit": self.limits.opslimit,
                "memlimit": self.limits.memlimit,
                "salt": b64url_encode(self._salt),
            },
            "secretbox": b64url_encode(bytes(self._box.encrypt(plaintext))),
        }
        _write_atomic(self.path, json.dumps(outer, indent=1).encode())
