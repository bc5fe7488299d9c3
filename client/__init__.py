"""Carnet's Python client SDK (docs/sdk.md).

Public API::

    from client import Client
    client = await Client.enrol(url, code, Path("me.keystore"), passphrase)
    async with client:
        direct = await client.direct(person_id)
        await direct.send("Bonjour")
        group = await client.create_group([p1, p2], "Sortie au musée")
        await group.send("Départ 8h")
        message = await client.next_message()     # .conversation, .seq, .body
        event = await client.next_event()         # membership changes, expiries

Modules: :mod:`client.client` (the client), :mod:`client.handle` (a conversation's
verbs), :mod:`client.keystore` (encrypted key file), :mod:`client.sessions`,
:mod:`client.groups` and :mod:`client.conversations` (pure session, sender-key and
membership bookkeeping), :mod:`client.inbound` / :mod:`client.outbound` (sans-I/O
processing of received frames and building of sends), :mod:`client.recipients`
(device lists and sessions), :mod:`client.content` (what goes inside ciphertexts),
:mod:`client.http` (REST), :mod:`client.transport` (WebSocket login),
:mod:`client.chat` and :mod:`client.smoke` (``carnet chat`` / ``carnet smoke``).
"""

from client.client import Client
from client.conversations import ConversationInfo
from client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    KeystoreError,
    NoDevices,
    SendRefused,
    WrongPassphrase,
)
from client.handle import ConversationHandle
from client.http import Contact, DeviceInfo, Person
from client.keystore import INTERACTIVE, MINIMAL, MODERATE, KdfLimits, Keystore
from client.messages import (
    DecryptFailure,
    Event,
    ExpiredMessages,
    FrankingEvidence,
    MembershipChange,
    Message,
    SentReceipt,
)

__all__ = [
    "INTERACTIVE",
    "MINIMAL",
    "MODERATE",
    "ApiError",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "Contact",
    "ConversationHandle",
    "ConversationInfo",
    "DecryptFailure",
    "DeviceInfo",
    "Event",
    "ExpiredMessages",
    "FrankingEvidence",
    "KdfLimits",
    "KeystoreError",
    "Keystore",
    "MembershipChange",
    "Message",
    "NoDevices",
    "Person",
    "SendRefused",
    "SentReceipt",
    "WrongPassphrase",
]
