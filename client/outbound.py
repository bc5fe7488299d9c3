"""Building the ``send`` frames of one message (sans-I/O; docs/sdk.md, "Sending").

Rules:

1. A direct conversation: one pairwise envelope per device of both members,
   our other devices included; the content names the addressee (``to``) so our
   other devices show whom it went to.
2. Any other kind: one sender-key ciphertext for every member device. When our
   sender key is new (first send, a membership event, a different device set)
   it is distributed first, as pairwise envelopes *in the same conversation*:
   the server gives the distribution a lower seq and delivers in seq order, so
   every recipient holds the key before the group message
   (docs/protocol-e2e.md §7).
3. Every plaintext is franked; the server stamps the commitment.
"""

from __future__ import annotations

from client.content import SenderKeyContent, TextContent, encode_body
from client.conversations import ConversationInfo
from client.state import DeviceState
from crypto import frank
from protocol import EnvelopeIn, GroupPayload, SendFrame

__all__ = ["build_send"]


def _pairwise(
    state: DeviceState, conversation: str, client_msg_id: str, devices: list[str], body: bytes
) -> SendFrame:
    franked = frank(body)
    return SendFrame(
        client_msg_id=client_msg_id,
        conversation=conversation,
        envelopes=[
            EnvelopeIn(device_id=d, ciphertext=state.book.encrypt(d, franked.payload))
            for d in devices
        ],
        commitment=franked.commitment,
    )


def build_send(
    state: DeviceState,
    info: ConversationInfo,
    devices: list[str],
    text: str,
    client_msg_id: str,
) -> list[SendFrame]:
    """The frames that send ``text`` to ``devices``, in the order to send them.

    Args:
        state: Our device state (sessions and sender keys move on).
        info: The conversation.
        devices: Every recipient device, each with a pairwise session.
        text: The message.
        client_msg_id: The message's client id (a distribution gets ``<id>.k``).

    Returns:
        One frame (direct, or group with a known key) or two (distribution, then
        the group message).
    """
    if info.pairwise:
        body = encode_body(TextContent(text, info.other(state.person_id)))
        return [_pairwise(state, info.id, client_msg_id, devices, body)]
    members = frozenset(devices)
    sender, new = state.groups.sender(info.id, members)
    frames = []
    if new:
        key = encode_body(SenderKeyContent(info.id, sender.distribution()))
        frames.append(_pairwise(state, info.id, client_msg_id + ".k", sorted(members), key))
    franked = frank(encode_body(TextContent(text)))
    frames.append(
        SendFrame(
            client_msg_id=client_msg_id,
            conversation=info.id,
            group=GroupPayload(
                ciphertext=sender.encrypt(franked.payload), device_ids=sorted(members)
            ),
            commitment=franked.commitment,
        )
    )
    return frames
