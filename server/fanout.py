"""Live delivery: stored messages to the devices connected to this node.

Two sources feed :meth:`Fanout.deliver`: this node's sequencer (messages it
wrote, right after the write) and a change stream on ``messages`` (messages
other nodes wrote; our own are filtered out by ``node``). A message reaches
each recipient device's connection, which orders it (``server.ordering``).

Cost of the change stream (docs/architecture.md, "Several nodes"): every node
receives every message written anywhere, ciphertext included, and drops those
for devices it does not hold. That is linear in nodes × traffic; it is the
first thing to shard (by school) when a département outgrows one replica set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pymongo.errors import PyMongoError

from protocol import DeliverFrame, EventFrame, MembershipEvent, dump_frame
from server.hub import Hub
from server.lookups import Lookups
from server.metrics import Metrics
from server.receipts import Receipts
from server.recent_senders import RecentSenders
from storage.database import Store
from storage.messages import StoredMessage, view_for

log = logging.getLogger(__name__)
Doc = dict[str, Any]
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


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


class Fanout:
    def __init__(self, hub: Hub, metrics: Metrics, lookups: Lookups, recent: RecentSenders) -> None:
        self._hub = hub
        self._metrics = metrics
        self._lookups = lookups
        self._recent = recent

    def deliver(self, docs: Sequence[Doc], path: str = "local") -> None:
        """Offer each stored document to its recipient devices connected here."""
        for doc in docs:
            if "event" in doc:  # membership changed: what this node cached is stale
                self._lookups.forget_conversation(doc["conversation"])
            else:
                self._recent.saw(doc["conversation"], doc["seq"], doc["sender_person"])
            for device_id in doc.get("recipients", ()):
                connection = self._hub.get(device_id)
                if connection is None:
                    continue
                message = view_for(doc, device_id)
                frame = frame_for(message)
                connection.deliver_live(
                    message.conversation, message.seq, frame.type, dump_frame(frame)
                )
                self._metrics.deliveries.labels(path).inc()

    async def follow(
        self,
        store: Store,
        node: str,
        stop: asyncio.Event,
        receipts: Receipts | None = None,
        observe: Callable[[str, int], None] | None = None,
    ) -> None:
        """Deliver what other nodes store (messages, receipts) until ``stop`` is set.

        One change stream on the database, filtered to the collections that
        carry live traffic and to documents written by other nodes. Resumes
        after a driver error from the last resume token, with a bounded
        backoff; every restart is logged.
        """
        pipeline = [
            {
                "$match": {
                    "operationType": {"$in": ["insert", "update", "replace"]},
                    "ns.coll": {"$in": ["messages", "receipts"]},
                    "fullDocument.node": {"$ne": node},
                }
            }
        ]
        resume: Any = None
        failures = 0
        while not stop.is_set():
            try:
                async with await store.db.watch(
                    pipeline,
                    resume_after=resume,
                    max_await_time_ms=500,
                    full_document="updateLookup",
                ) as stream:
                    failures = 0
                    while not stop.is_set() and stream.alive:  # a dead cursor: reopen
                        change = await stream.try_next()
                        if change is None:
                            continue
                        resume = stream.resume_token
                        doc = change.get("fullDocument")
                        if doc is None:
                            continue
                        if change["ns"]["coll"] == "messages":
                            if change["operationType"] == "insert":
                                if observe is not None:
                                    observe(doc["conversation"], doc["seq"])
                                self.deliver([doc], path="stream")
                        elif receipts is not None and "kind" in doc:
                            await self._remote_receipt(receipts, doc)
            except PyMongoError as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "change stream interrupted (%s); resuming in %ss", type(exc).__name__, delay
                )
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    continue

    async def _remote_receipt(self, receipts: Receipts, doc: Doc) -> None:
        conversation = await self._lookups.conversation(doc["conversation"])
        if conversation is not None:
            receipts.tell(conversation, doc["person_id"], doc["kind"], int(doc["seq"]), doc["at"])
