"""Carnet end-to-end encryption: the recipe API (docs/protocol-e2e.md).

Pure: no I/O, no asyncio, no clock (times are passed in), randomness injectable via
``rng`` parameters. Low-level pieces live in :mod:`crypto.hazmat`.

Typical use::

    alice, bob = DeviceKeys.generate(now), DeviceKeys.generate(now)
    session = initiate_session(alice, bob.bundle(one_time_prekey_id=1))
    envelope = session.encrypt(b"Bonjour")
    accepted = accept_session(bob, envelope)          # accepted.plaintext == b"Bonjour"
    bob = bob.without_one_time_prekey(accepted.used_one_time_prekey_id)

Every failure caused by received data raises :class:`InvalidMessage` (a
:class:`CryptoError`), always with the same message.
"""

from crypto.envelope import MAX_PLAINTEXT_SIZE, parse_envelope
from crypto.errors import CryptoError, CryptoUsageError, InvalidMessage
from crypto.franking import (
    AbuseReport,
    FrankedMessage,
    FrankingKeyring,
    ServerFrankingKey,
    frank,
    open_franked,
    verify_report,
)
from crypto.keys import (
    DeviceKeys,
    IdentityKeyPair,
    PreKeyBundle,
    verify_signed_prekey,
)
from crypto.safety import SafetyNumber, safety_number
from crypto.sender_keys import GroupReceiver, GroupSender
from crypto.session import (
    AcceptedSession,
    Session,
    SessionState,
    accept_session,
    initiate_session,
)

__all__ = [
    "MAX_PLAINTEXT_SIZE",
    "AbuseReport",
    "AcceptedSession",
    "CryptoError",
    "CryptoUsageError",
    "DeviceKeys",
    "FrankedMessage",
    "FrankingKeyring",
    "GroupReceiver",
    "GroupSender",
    "IdentityKeyPair",
    "InvalidMessage",
    "PreKeyBundle",
    "SafetyNumber",
    "ServerFrankingKey",
    "Session",
    "SessionState",
    "accept_session",
    "frank",
    "initiate_session",
    "open_franked",
    "parse_envelope",
    "safety_number",
    "verify_report",
    "verify_signed_prekey",
]
