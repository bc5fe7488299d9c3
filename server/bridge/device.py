"""The bridge as a device: opening what an email-only parent receives, sealing replies.

Sans-I/O, and deliberately the SDK's own bookkeeping (``client.sessions``,
``client.groups``, ``client.content``): the bridge speaks exactly the content
format of app devices (docs/sdk.md, "Content"), so app users and email
families interoperate. Rules, as in ``client.inbound`` / ``client.outbound``:

1. A pairwise message is opened with the session book (a prekey message may
   start a session and consume a one-time prekey); a group message with the
   sender's sender key. The franking commitment is checked; every failure is
   the one opaque :class:`crypto.InvalidMessage`.
2. A sender key distribution is installed only when it came pairwise, in the
   conversation it names.
3. A membership event rotates our sender key; one that no longer lists us
   forgets the conversation's keys.
4. A reply in a direct conversation is one pairwise envelope per device of
   both members (our own bridge device excluded); in any other kind one group
   ciphertext, preceded by a pairwise distribution of a new sender key when
   the member devices changed. Every plaintext is franked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from client.content import SenderKeyContent, TextContent, decode_body, encode_body
from client.groups import GroupBook
from client.sessions import SessionBook
from crypto import DeviceKeys, InvalidMessage, frank, open_franked
from storage.messages import StoredMessage

STATE_VERSION = 1


@dataclass
class BridgeState:
    """The private state of one bridge device (sealed at rest with the bridge key)."""

    keys: DeviceKeys
    book: SessionBook = field(default_factory=SessionBook)
    groups: GroupBook = field(default_factory=GroupBook)

    def to_bytes(self) -> bytes:
        data = {
            "version": STATE_VERSION,
            "keys": self.keys.to_dict(),
            "book": self.book.to_dict(),
            "groups": self.groups.to_dict(),
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> BridgeState:
        """Restore a state.

        Raises:
            InvalidMessage: malformed or from another version.
        """
        try:
            raw = json.loads(data)
            if raw["version"] != STATE_VERSION:
                raise InvalidMessage()
            return cls(
                DeviceKeys.from_dict(raw["keys"]),
                SessionBook.from_dict(raw["book"]),
                GroupBook.from_dict(raw["groups"]),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidMessage() from None


@dataclass(frozen=True)
class Opened:
    text: str
    franking_key: bytes


def open_message(state: BridgeState, message: StoredMessage) -> Opened | None:
    """Open one stored message addressed to the bridge device (rules 1, 2).

    Returns:
        The text, or ``None`` for control content (a sender key, installed).

    Raises:
        InvalidMessage: it does not open, is not franked, or breaks rule 2.
    """
    if message.ciphertext is None or message.commitment is None:
        raise InvalidMessage()
    if message.group:
        payload = state.groups.decrypt(
            message.conversation, message.sender_device, message.ciphertext
        )
    else:
        payload, state.keys = state.book.decrypt(
            state.keys, message.sender_device, message.ciphertext
        )
    body, franking_key = open_franked(payload, message.commitment)
    content = decode_body(body)
    if isinstance(content, SenderKeyContent):
        if message.group or content.conversation != message.conversation:
            raise InvalidMessage()
        state.groups.add_distribution(
            content.conversation, message.sender_device, content.distribution
        )
        return None
    return Opened(content.text, franking_key)


def apply_event(state: BridgeState, conversation: str, members: list[str], me: str) -> None:
    """A membership change (rule 3)."""
    if me not in members:
        state.groups.forget(conversation)
    else:
        state.groups.rotate(conversation)


@dataclass(frozen=True)
class Outgoing:
    """One send, as the sequencer stores it."""

    client_msg_id: str
    pairwise: dict[str, bytes]
    group: bytes | None
    group_devices: tuple[str, ...]
    commitment: bytes


def _pairwise(state: BridgeState, client_msg_id: str, devices: list[str], body: bytes) -> Outgoing:
    franked = frank(body)
    return Outgoing(
        client_msg_id,
        {d: state.book.encrypt(d, franked.payload) for d in devices},
        None,
        (),
        franked.commitment,
    )


def build_reply(
    state: BridgeState,
    conversation: str,
    direct_to: str | None,
    devices: list[str],
    text: str,
    client_msg_id: str,
) -> list[Outgoing]:
    """The sends that post ``text`` (rule 4); every device must have a session.

    Args:
        state: our state (sessions and sender keys move on: save it).
        conversation: the conversation id.
        direct_to: the other person of a direct conversation, else ``None``.
        devices: every recipient device (ours excluded).
        text: the reply.
        client_msg_id: idempotency key (a distribution gets ``<id>.k``).
    """
    if direct_to is not None:
        return [_pairwise(state, client_msg_id, devices, encode_body(TextContent(text, direct_to)))]
    members = frozenset(devices)
    sender, new = state.groups.sender(conversation, members)
    sends = []
    if new:
        key = encode_body(SenderKeyContent(conversation, sender.distribution()))
        sends.append(_pairwise(state, client_msg_id + ".k", sorted(members), key))
    franked = frank(encode_body(TextContent(text)))
    sends.append(
        Outgoing(
            client_msg_id,
            {},
            sender.encrypt(franked.payload),
            tuple(sorted(members)),
            franked.commitment,
        )  # fmt: skip
    )
    return sends


def acknowledgement_message(conversation: str, seq: int, message_id: str, person: str) -> bytes:
    """What a guardian's device signs to acknowledge an announcement (docs/email-bridge.md)."""
    return f"carnet-ack-v1\x00{conversation}\x00{seq}\x00{message_id}\x00{person}".encode()
