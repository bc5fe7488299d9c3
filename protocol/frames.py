"""The WebSocket frames of protocol version 1 (docs/protocol.md, "Frames").

Every frame is one JSON text message with a ``type`` discriminator and a
protocol version ``v``. Binary fields (ciphertexts, signatures, nonces) are
base64url without padding (RFC 4648 §5), as everywhere in the protocol. The
models are strict: unknown fields are refused, sizes and counts are bounded,
so a frame that validates is safe to act on.

Connection life cycle (see :mod:`protocol.session`): the server sends
``challenge``; the device answers ``auth``; the server answers ``ready`` and
from then on both sides exchange ``send``/``sent``, ``deliver``/``ack`` and
``error``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import InvalidMessage
from protocol.errors import ErrorCode, ProtocolError

PROTOCOL_VERSION: Literal[1] = 1
MAX_ENVELOPES_PER_SEND = 1000
"""A send may address at most this many devices (a class channel's worth)."""
MAX_ACK_IDS = 1000
MAX_CIPHERTEXT_BYTES = 192 * 1024
"""Largest ciphertext of one envelope; the whole frame is bounded separately."""

_AUTH_CONTEXT = b"carnet-auth-v1"


def _b64decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return b64url_decode(value)
    except InvalidMessage:
        raise ValueError("not unpadded base64url") from None


def _bounded(limit: int) -> AfterValidator:
    def check(value: bytes) -> bytes:
        if len(value) > limit:
            raise ValueError(f"at most {limit} bytes")
        return value

    return AfterValidator(check)


B64 = Annotated[bytes, BeforeValidator(_b64decode), PlainSerializer(b64url_encode, return_type=str)]
Ciphertext = Annotated[B64, _bounded(MAX_CIPHERTEXT_BYTES)]
Signature = Annotated[B64, _bounded(64)]
Commitment = Annotated[B64, Field(min_length=32, max_length=32)]
"""HMAC-SHA256 franking commitment (docs/protocol.md, "Franking")."""
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ClientMessageId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Seq = Annotated[int, Field(ge=1, le=2**53)]
EnvelopeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}:[0-9]{1,16}$")]
"""``<conversation>:<seq>``: names one message of a conversation for one device."""
Version = Literal[1]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Version = 1


def auth_message(origin: str, nonce: bytes) -> bytes:
    """The bytes a device signs to answer a challenge.

    The signature is bound to the server's public origin so that a challenge
    relayed from another server (a phishing proxy) does not verify here.

    Args:
        origin: the server's public origin, e.g. ``https://carnet.example``.
        nonce: the challenge's random bytes.

    Returns:
        ``b"carnet-auth-v1" || 0x00 || origin (UTF-8) || 0x00 || nonce``.
    """
    return _AUTH_CONTEXT + b"\x00" + origin.encode("utf-8") + b"\x00" + nonce


def acknowledgement_message(conversation: str, seq: int, message_id: str, person_id: str) -> bytes:
    """The bytes a guardian's device signs to acknowledge an announcement.

    ``b"carnet-ack-v1" || 0x00 || conversation || 0x00 || seq (decimal) || 0x00
    || message id || 0x00 || person id`` (UTF-8): the signature proves which
    person, from which device, acknowledged which message.
    """
    parts = (conversation, str(seq), message_id, person_id)
    return b"carnet-ack-v1\x00" + b"\x00".join(p.encode("utf-8") for p in parts)


# --- server -> device -------------------------------------------------------


class ChallengeFrame(_Frame):
    """First frame of every connection: sign ``auth_message(origin, nonce)``."""

    type: Literal["challenge"] = "challenge"
    nonce: B64
    origin: str


class ReadyFrame(_Frame):
    """The device is authenticated; its queue follows as ``deliver`` frames."""

    type: Literal["ready"] = "ready"
    device_id: Identifier
    person_id: Identifier
    session_token: str
    """Bearer token for this device's REST calls (``/v1/devices/me/...``)."""
    session_expires: int
    """When ``session_token`` stops working, ms since the epoch; reconnect for a new one."""
    prekeys_left: int
    """One-time prekeys the server still holds for this device; replenish when low."""


class SentFrame(_Frame):
    """A ``send`` is stored durably (journaled, majority): it will be delivered."""

    type: Literal["sent"] = "sent"
    client_msg_id: ClientMessageId
    message_id: Identifier
    conversation: Identifier
    seq: Seq
    ts: int
    """Server time of storage, milliseconds since the Unix epoch."""
    stamp: B64 | None = None
    """The server's franking stamp over the send's commitment, if it had one."""
    silent_to: list[Identifier] = []
    """Recipients in their quiet hours: delivered without notification (docs/moderation.md)."""
    quiet_until: int | None = None
    """When the last of those quiet hours ends, ms since the epoch."""


class DeliverFrame(_Frame):
    """One message for this device; answer with ``ack`` once it is processed.

    ``envelope_id`` is ``<conversation>:<seq>``; acknowledgements are
    cumulative per conversation (acking seq n acknowledges every seq <= n).
    """

    type: Literal["deliver"] = "deliver"
    envelope_id: EnvelopeId
    message_id: Identifier
    conversation: Identifier
    seq: Seq
    sender_device: Identifier
    sender_person: Identifier
    ciphertext: B64
    group: bool = False
    """True when ``ciphertext`` is the one group ciphertext shared by every member."""
    ts: int
    commitment: B64 | None = None
    stamp: B64 | None = None
    silent: bool = False
    """Quiet hours of the recipient's school: show it without a notification."""


class ErrorFrame(_Frame):
    """Something went wrong; ``ref`` names the client message id if any."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None
    retry_after: float | None = None
    reason: str | None = None
    """For ``not_allowed`` and ``rate_limited``: the moderation reason (docs/moderation.md)."""


class MembershipEvent(BaseModel):
    """What changed in a conversation's membership (clients rotate sender keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["created", "added", "removed", "left", "synced"]
    persons: list[Identifier]
    """Who was added, removed or left (for ``created``/``synced``: every member)."""
    by: Identifier | None = None
    members: list[Identifier]
    """The members after the change."""


class EventFrame(_Frame):
    """A conversation event, sequenced and acknowledged like a message."""

    type: Literal["event"] = "event"
    envelope_id: EnvelopeId
    conversation: Identifier
    seq: Seq
    ts: int
    event: MembershipEvent


class SyncedFrame(_Frame):
    """End of a ``sync`` answer: everything after ``since`` up to ``head`` was sent."""

    type: Literal["synced"] = "synced"
    conversation: Identifier
    head: int


class ExpiredFrame(_Frame):
    """Messages ``from_seq``..``to_seq`` of a conversation expired before delivery."""

    type: Literal["expired"] = "expired"
    conversation: Identifier
    from_seq: Seq
    to_seq: Seq


class ReceiptFrame(_Frame):
    """Someone received (``delivered``) or read a message (if the school allows)."""

    type: Literal["receipt"] = "receipt"
    conversation: Identifier
    seq: Seq
    person_id: Identifier
    kind: Literal["delivered", "read"]
    ts: int


class PrekeysLowFrame(_Frame):
    """The device's one-time prekeys run low: upload more (``PUT /v1/devices/me/prekeys``)."""

    type: Literal["prekeys_low"] = "prekeys_low"
    remaining: int


class NoticeFrame(_Frame):
    """Something the person should know, unsequenced and live only (docs/moderation.md).

    ``new_device``: a device (``device_id``) was enrolled on the person's
    account; ``report_outcome``: a moderator moved the person's report
    ``report_id`` to ``state``.
    """

    type: Literal["notice"] = "notice"
    kind: Literal["new_device", "report_outcome"]
    ts: int
    device_id: Identifier | None = None
    report_id: Identifier | None = None
    state: str | None = None


AnyServerFrame = (
    ChallengeFrame
    | ReadyFrame
    | SentFrame
    | DeliverFrame
    | EventFrame
    | SyncedFrame
    | ExpiredFrame
    | ReceiptFrame
    | ErrorFrame
    | PrekeysLowFrame
    | NoticeFrame
)
ServerFrame = Annotated[
    AnyServerFrame,
    Field(discriminator="type"),
]

# --- device -> server -------------------------------------------------------


class AuthFrame(_Frame):
    """Answer to ``challenge``: the device id and its Ed25519 signature."""

    type: Literal["auth"] = "auth"
    device_id: Identifier
    signature: Signature


class EnvelopeIn(BaseModel):
    """One recipient device's ciphertext inside a ``send``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: Identifier
    ciphertext: Ciphertext


class GroupPayload(BaseModel):
    """One group (sender-key) ciphertext for many devices: stored once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ciphertext: Ciphertext
    device_ids: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_ENVELOPES_PER_SEND)]


class SendFrame(_Frame):
    """Store these envelopes and deliver each to its device.

    ``envelopes`` carry one ciphertext per device (pairwise sessions);
    ``group`` carries one ciphertext for many devices (sender keys). A send has
    either or both, and no device twice. ``client_msg_id`` makes the send
    idempotent: the same id from the same device is stored once and always
    answered with the same ``message_id``. ``commitment`` is the franking
    commitment to the plaintext; the server stamps it.
    """

    type: Literal["send"] = "send"
    client_msg_id: ClientMessageId
    conversation: Identifier
    envelopes: Annotated[list[EnvelopeIn], Field(max_length=MAX_ENVELOPES_PER_SEND)] = []
    group: GroupPayload | None = None
    commitment: Commitment | None = None

    @model_validator(mode="after")
    def _recipients(self) -> SendFrame:
        targets = [e.device_id for e in self.envelopes]
        if self.group is not None:
            targets += self.group.device_ids
        if not targets:
            raise ValueError("a send needs envelopes or a group payload")
        if len(targets) > MAX_ENVELOPES_PER_SEND:
            raise ValueError(f"at most {MAX_ENVELOPES_PER_SEND} recipient devices")
        if len(set(targets)) != len(targets):
            raise ValueError("a device appears twice")
        return self

    @property
    def recipients(self) -> list[str]:
        group = self.group.device_ids if self.group is not None else []
        return [e.device_id for e in self.envelopes] + group


class AckFrame(_Frame):
    """These messages are processed (cumulative per conversation: the highest
    seq of each conversation counts). Their ciphertext is dropped once every
    recipient device has acknowledged it."""

    type: Literal["ack"] = "ack"
    envelope_ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=MAX_ACK_IDS)]


class SyncFrame(_Frame):
    """Send again what this device has not acknowledged after ``since``."""

    type: Literal["sync"] = "sync"
    conversation: Identifier
    since: Annotated[int, Field(ge=0, le=2**53)] = 0


class ReadFrame(_Frame):
    """The person has read the conversation up to ``seq`` (read receipts)."""

    type: Literal["read"] = "read"
    conversation: Identifier
    seq: Seq


AnyClientFrame = AuthFrame | SendFrame | AckFrame | SyncFrame | ReadFrame
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]

_client_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
_server_adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def _protocol_error(exc: ValidationError) -> ProtocolError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for err in errors:
        if err["loc"] and err["loc"][-1] == "v":
            return ProtocolError(
                ErrorCode.UNSUPPORTED_VERSION, f"this server speaks protocol v{PROTOCOL_VERSION}"
            )
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "frame"
    return ProtocolError(ErrorCode.BAD_FRAME, f"{where}: {first['msg']}")


def parse_client_frame(data: str | bytes) -> AnyClientFrame:
    """Validate a device's frame.

    Raises:
        ProtocolError: ``bad_frame`` or ``unsupported_version``, with a message
            naming the first offending field.
    """
    try:
        return _client_adapter.validate_json(data)
    except ValidationError as exc:
        raise _protocol_error(exc) from None


def parse_server_frame(data: str | bytes) -> AnyServerFrame:
    """Validate a server's frame (used by the client SDK).

    Raises:
        ProtocolError: the frame does not match the protocol.
    """
    try:
        return _server_adapter.validate_json(data)
    except ValidationError as exc:
        raise _protocol_error(exc) from None


def dump_frame(frame: BaseModel) -> str:
    """Serialise a frame to its JSON text form."""
    return frame.model_dump_json()
