"""What a received frame does to the device state (sans-I/O; docs/sdk.md, "Receiving").

Rules:

1. A ``deliver`` is decrypted pairwise, or with the sender's sender key when it
   is a group ciphertext, then its franking commitment is checked
   (docs/protocol-e2e.md §8). Every failure is the one opaque
   :class:`crypto.InvalidMessage`, and nothing in the state changes before the
   commitment is known to be there.
2. A sender key distribution arrives pairwise in the conversation it is for;
   one naming another conversation, or sent as a group ciphertext, is refused
   (the server cannot move a key between conversations).
3. Delivery is in seq order per conversation, so a distribution always comes
   before the group messages that use it; a group message whose key we do not
   hold is a failure, acknowledged like the others (never held back, since
   acknowledgements are cumulative).
4. A membership ``event`` replaces our copy of the members and rotates our
   sender key for the conversation; an event that no longer lists us drops the
   conversation and its keys (client.conversations rules 2, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from client.content import SenderKeyContent, TextContent, decode_body
from client.messages import MembershipChange
from client.state import DeviceState
from crypto import InvalidMessage, open_franked
from protocol import DeliverFrame, EventFrame

__all__ = ["Opened", "apply_event", "open_deliver"]


@dataclass(frozen=True)
class Opened:
    """A decrypted text message with what is needed to report it."""

    content: TextContent
    body: bytes
    franking_key: bytes


def open_deliver(state: DeviceState, frame: DeliverFrame) -> Opened | None:
    """Decrypt one ``deliver`` (rules 1-3).

    Args:
        state: Our device state (its sessions, keys and sender keys move on).
        frame: The frame (untrusted).

    Returns:
        The text message, or ``None`` for control content (a sender key, installed).

    Raises:
        InvalidMessage: it does not decrypt, is not franked, or breaks rule 2.
    """
    if frame.commitment is None:
        raise InvalidMessage()
    if frame.group:
        payload = state.groups.decrypt(frame.conversation, frame.sender_device, frame.ciphertext)
    else:
        payload, keys = state.book.decrypt(state.keys, frame.sender_device, frame.ciphertext)
        state.keys = keys
    body, franking_key = open_franked(payload, frame.commitment)
    content = decode_body(body)
    if isinstance(content, SenderKeyContent):
        if frame.group or content.conversation != frame.conversation:
            raise InvalidMessage()
        state.groups.add_distribution(
            content.conversation, frame.sender_device, content.distribution
        )
        return None
    return Opened(content, body, franking_key)


def apply_event(state: DeviceState, frame: EventFrame) -> MembershipChange:
    """Apply a membership event (rule 4).

    Args:
        state: Our device state.
        frame: The event frame.

    Returns:
        The change, for the application.
    """
    event, conversation = frame.event, frame.conversation
    members = tuple(event.members)
    if state.person_id not in members:
        state.conversations.pop(conversation, None)
        state.groups.forget(conversation)
    else:
        info = state.conversations.get(conversation)
        if info is not None:
            state.conversations[conversation] = info.with_members(members, frame.seq)
        state.groups.rotate(conversation)
    return MembershipChange(
        conversation=conversation,
        seq=frame.seq,
        action=event.action,
        persons=tuple(event.persons),
        by=event.by,
        members=members,
        ts=frame.ts,
    )
