"""Carnet's wire protocol: the frames a device and the server exchange.

This package is sans-I/O (like ``h11`` or ``websockets.protocol``): pydantic
models for every frame, the error codes, and the connection state machine.
Both ``server/`` and the client SDK in ``client/`` use it, so the two sides
cannot drift apart; docs/protocol.md is its prose specification.
"""

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import (
    PROTOCOL_VERSION,
    AckFrame,
    AuthFrame,
    ChallengeFrame,
    ClientFrame,
    DeliverFrame,
    EnvelopeIn,
    ErrorFrame,
    EventFrame,
    ExpiredFrame,
    GroupPayload,
    MembershipEvent,
    NoticeFrame,
    PrekeysLowFrame,
    ReadFrame,
    ReadyFrame,
    ReceiptFrame,
    SendFrame,
    SentFrame,
    ServerFrame,
    SyncedFrame,
    SyncFrame,
    acknowledgement_message,
    auth_message,
    dump_frame,
    parse_client_frame,
    parse_server_frame,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AckFrame",
    "AuthFrame",
    "ChallengeFrame",
    "ClientFrame",
    "DeliverFrame",
    "EnvelopeIn",
    "ErrorCode",
    "ErrorFrame",
    "EventFrame",
    "ExpiredFrame",
    "MembershipEvent",
    "NoticeFrame",
    "ReadFrame",
    "ReceiptFrame",
    "SyncFrame",
    "SyncedFrame",
    "GroupPayload",
    "PrekeysLowFrame",
    "ProtocolError",
    "ReadyFrame",
    "SendFrame",
    "SentFrame",
    "ServerFrame",
    "acknowledgement_message",
    "auth_message",
    "dump_frame",
    "parse_client_frame",
    "parse_server_frame",
]
