"""Carnet's Python client SDK (docs/sdk.md).

Public API::

    from client import Client
    client = await Client.enrol(url, code, Path("me.keystore"), passphrase)
    async with client:
        await client.send_to_person(person_id, "Bonjour")
        message = await client.next_message()

Modules: :mod:`client.client` (the client), :mod:`client.keystore` (encrypted key
file), :mod:`client.sessions` and :mod:`client.groups` (pure session and sender-key
bookkeeping), :mod:`client.content` (what goes inside ciphertexts),
:mod:`client.http` (REST), :mod:`client.transport` (WebSocket login),
:mod:`client.chat` and :mod:`client.smoke` (``carnet chat`` / ``carnet smoke``).
"""

from client.client import Client
from client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    KeystoreError,
    NoDevices,
    SendRefused,
    WrongPassphrase,
)
from client.http import Contact, DeviceInfo, Person
from client.keystore import INTERACTIVE, MINIMAL, MODERATE, KdfLimits, Keystore
from client.messages import DecryptFailure, FrankingEvidence, Message, SentReceipt

__all__ = [
    "INTERACTIVE",
    "MINIMAL",
    "MODERATE",
    "ApiError",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "Contact",
    "DecryptFailure",
    "DeviceInfo",
    "FrankingEvidence",
    "KdfLimits",
    "KeystoreError",
    "Keystore",
    "Message",
    "NoDevices",
    "Person",
    "SendRefused",
    "SentReceipt",
    "WrongPassphrase",
]
