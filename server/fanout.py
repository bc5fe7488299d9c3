"""Live delivery: stored messages to the devices connected to this node.

Two sources feed :meth:`Fanout.deliver`: this node's sequencer (messages it
wrote, right after the write) and the node's change feed on ``messages``
(messages other nodes wrote; our own are filtered out by ``node``,
``server.change_feed``). A message reaches
each recipient device's connection, which orders it (``server.ordering``).

Cost of the change stream (docs/architecture.md, "Several nodes"): every node
receives every message written anywhere, ciphertext included, and drops those
for devices it does not hold. That is linear in nodes × traffic; it is the
first thing to shard (by school) when a département outgrows one replica set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from crypto.encoding import b64url_encode
from protocol import DeliverFrame, EventFrame, MembershipEvent, dump_frame
from protocol.frames import PROTOCOL_VERSION
from server.change_feed import ChangeFeed
from server.hub import Hub
from server.lookups import Lookups
from server.metrics import Metrics
from server.receipts import Receipts
from server.recent_messages import RecentMessages
from server.recent_senders import RecentSenders
from storage.messages import StoredMessage, view_for

log = logging.getLogger(__name__)
Doc = dict[str, Any]


def millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def frame_for(message: StoredMessage) -> DeliverFrame | EventFrame:
    """The frame that carries a stored message (or event) to its device."""
    envelope = f"{message.conversation}:{message.seq}"
    if message.event is not None:
        return EventFrame(
            envelope_id=envelope,
            conversation=message.conversation,
            seq=message.seq,
            ts=millis(message.created_at),
            event=MembershipEvent.model_validate(message.event),
        )
    return DeliverFrame(
        envelope_id=envelope,
        message_id=message.message_id,
        conversation=message.conversation,
        seq=message.seq,
        sender_device=message.sender_device,
        sender_person=message.sender_person,
        ciphertext=message.ciphertext or b"",
        group=message.group,
        ts=millis(message.created_at),
        commitment=message.commitment,
        stamp=message.stamp,
        silent=message.silent,
    )


def frame_text(message: StoredMessage) -> tuple[str, str]:
    """The type and JSON text of :func:`frame_for`'s frame.

    A ``deliver`` frame (one per recipient device: the hottest path) is
    written directly with orjson, the same JSON as the pydantic model's
    (tests/server/test_frame_text.py); events go through the model.
    """
    if message.event is not None:
        frame = frame_for(message)
        return frame.type, dump_frame(frame)
    text = orjson.dumps(
        {
            "type": "deliver",
            "v": PROTOCOL_VERSION,
            "envelope_id": f"{message.conversation}:{message.seq}",
            "message_id": message.message_id,
            "conversation": message.conversation,
            "seq": message.seq,
            "sender_device": message.sender_device,
            "sender_person": message.sender_person,
            "ciphertext": b64url_encode(message.ciphertext or b""),
            "group": message.group,
            "ts": millis(message.created_at),
            "commitment": _b64(message.commitment),
            "stamp": _b64(message.stamp),
            "silent": message.silent,
        }
    )
    return "deliver", text.decode()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else b64url_encode(data)


class Fanout:
    def __init__(
        self,
        hub: Hub,
        metrics: Metrics,
        lookups: Lookups,
        recent: RecentSenders,
        ring: RecentMessages,
        people_changed: Callable[[Iterable[str]], None],
    ) -> None:
        self._hub = hub
        self._metrics = metrics
        self._lookups = lookups
        self._recent = recent
        self._ring = ring
        self._people_changed = people_changed

    def deliver(self, docs: Sequence[Doc], path: str = "local") -> None:
        """Offer each stored document to its recipient devices connected here."""
        delivered = 0
        for doc in docs:
            self._ring.add(doc)
            event = doc.get("event")
            self._recent.saw(
                doc["conversation"], doc["seq"], None if event else doc["sender_person"]
            )
            if event is not None:  # membership changed: what this node cached is stale
                self._lookups.forget_conversation(doc["conversation"])
                self._people_changed(event.get("persons", ()))
            for device_id in doc.get("recipients", ()):
                connection = self._hub.get(device_id)
                if connection is None:
                    continue
                message = view_for(doc, device_id)
                kind, text = frame_text(message)
                connection.deliver_live(message.conversation, message.seq, kind, text)
                delivered += 1
        if delivered:
            self._metrics.count(self._metrics.deliveries, path, delivered)

    def follow(
        self, feed: ChangeFeed, receipts: Receipts, observe: Callable[[str, int], None]
    ) -> None:
        """Deliver what other nodes store (messages, receipts), from the node's change feed.

        Args:
            feed: the node's change feed (other nodes' live documents only).
            receipts: tells receipts to the people here they concern.
            observe: told each seq another node stored (the sequencer's heads).
        """

        async def on_message(change: Doc) -> None:
            doc = change["fullDocument"]
            if "conversation" not in doc or "seq" not in doc:
                return  # not a message document (nothing to deliver)
            observe(doc["conversation"], doc["seq"])
            self.deliver([doc], path="stream")

        async def on_receipt(change: Doc) -> None:
            moved = receipt_moved(change)
            if moved is None:
                return
            conversation = await self._lookups.conversation(moved.conversation)
            if conversation is not None:
                receipts.tell(conversation, moved.person_id, moved.kind, moved.seq, moved.at)

        feed.subscribe("messages", on_message)
        feed.subscribe("receipts", on_receipt)


@dataclass(frozen=True)
class MovedReceipt:
    conversation: str
    person_id: str
    kind: str
    seq: int
    at: datetime


def receipt_moved(change: Doc) -> MovedReceipt | None:
    """The receipt an insert or update of ``receipts`` moved forward, if any.

    An update carries only its changed fields; the ``_id``
    (``<conversation>:<person>:<kind>``) names the rest. No ``seq`` among
    them: the receipt did not move.
    """
    if change["operationType"] == "insert":
        doc = change["fullDocument"]
        return MovedReceipt(
            doc["conversation"], doc["person_id"], doc["kind"], int(doc["seq"]), doc["at"]
        )
    fields = change.get("updateDescription", {}).get("updatedFields", {})
    parts = str(change["documentKey"]["_id"]).split(":")
    if "seq" not in fields or "at" not in fields or len(parts) != 3:
        return None
    conversation, person_id, kind = parts
    return MovedReceipt(conversation, person_id, kind, int(fields["seq"]), fields["at"])
