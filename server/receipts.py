"""Delivery cursors and receipts, written in batches, within what each school allows.

A device's acknowledgements move its cursor (what it has received, per
conversation) and say that its person has *received* the conversation up to
a seq; a ``read`` frame says they have *read* it. Acknowledgements are
cumulative, so only the highest seq per device and conversation matters:
this node keeps them in memory and writes them every ``ack_flush_seconds``
(5 s) — ``bulk_write`` commands of :data:`server.write_gaps.CHUNK` documents
put between group commits — instead of two writes per acknowledgement: on the embedded
database each updated document costs more than a stored message, and these
writes once set the node's throughput (docs/performance.md). Delivery stays
at least once: a node that dies loses at most that interval of cursors, and
the devices are sent those messages again. A device that reconnects to the
same node resumes from the cursors not yet written; ``GET .../receipts``
adds the receipts not yet written.

Receipts are told within :data:`TELL_SECONDS` on this node, as ``receipt``
frames to the people they concern: the
senders of the messages they cover (``server.recent_senders``) and the
person's own other devices — in a direct conversation, both members. Other
nodes tell theirs through the change stream on ``receipts``
(``server.fanout``). The full list stays readable with
``GET /v1/conversations/{id}/receipts``. A school that turns a kind off
(``SchoolSettings``) gets nothing stored and nothing sent for it: the
setting bounds what is revealed, not just what is shown.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from protocol import ReceiptFrame, dump_frame
from server.clock import Clock, every
from server.hub import Hub
from server.lookups import Lookups
from server.node_cache import TtlCache
from server.recent_senders import RecentSenders
from server.write_gaps import SETTLE, WriteGaps, chunks
from storage.conversations import Conversation, ConversationKind
from storage.database import Store
from storage.errors import DatabaseUnavailable, DriverError
from storage.models import SchoolSettings
from storage.receipts import ReceiptUpdate

log = logging.getLogger(__name__)

Kind = Literal["delivered", "read"]
SETTINGS_TTL_SECONDS = 30.0
TELL_SECONDS = 0.25
"""How soon a receipt is told to the people it concerns on this node."""
FLUSH_PATIENCE = 0.5
"""Seconds each chunk of the flush waits for a gap between group commits."""
TOLD_ENTRIES = 200_000
"""(conversation, person, kind) whose last told seq a node remembers."""


class Receipts:
    """Buffers this node's acknowledgements; writes and tells them in batches."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        clock: Clock,
        node: str,
        lookups: Lookups,
        recent: RecentSenders,
        interval: float,
        gaps: WriteGaps | None = None,
    ) -> None:
        self._store = store
        self._lookups = lookups
        self._hub = hub
        self._clock = clock
        self._node = node
        self._recent = recent
        self._interval = interval
        self._gaps = gaps or WriteGaps()
        self._settings: TtlCache[str, SchoolSettings] = TtlCache(SETTINGS_TTL_SECONDS)
        self._cursors: dict[str, dict[str, int]] = {}
        self._pending: dict[tuple[str, str, Kind], tuple[int, str]] = {}
        """Receipts given since the last :meth:`tell_pending` (seq, the device that said so)."""
        self._unwritten: dict[tuple[str, str, str], tuple[int, str]] = {}
        """Receipts told but not written yet."""
        self._told: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    # --- from this node's devices (no I/O) -----------------------------------

    def acknowledge(self, device_id: str, person_id: str, highest: Mapping[str, int]) -> None:
        """``device_id`` received these conversations up to a seq (cumulative)."""
        cursors = self._cursors.setdefault(device_id, {})
        for conversation, seq in highest.items():
            if seq > cursors.get(conversation, 0):
                cursors[conversation] = seq
        self.record(device_id, person_id, highest, "delivered")

    def record(
        self, device_id: str, person_id: str, highest: Mapping[str, int], kind: Kind
    ) -> None:
        """``person_id`` received or read (said ``device_id``) conversations up to a seq."""
        for conversation, seq in highest.items():
            key = (conversation, person_id, kind)
            if seq > self._pending.get(key, (0, ""))[0]:
                self._pending[key] = (seq, device_id)

    def acked(self, device_id: str) -> dict[str, int]:
        """Cursors of ``device_id`` acknowledged here but not written yet."""
        return dict(self._cursors.get(device_id, {}))

    # --- writing --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tell receipts every :data:`TELL_SECONDS` and write every ``interval``, in
        two loops (a flush that waits for gaps between commits never holds the
        telling up); then write once more at shutdown."""
        async with asyncio.TaskGroup() as group:
            group.create_task(every(stop, TELL_SECONDS, self.tell_pending))
            group.create_task(every(stop, self._interval, self.flush))
        await self.flush()

    async def tell_pending(self) -> None:
        """Check the receipts given since the last call and tell them (no write)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            allowed = await self._allowed(pending)
        except (DatabaseUnavailable, DriverError) as exc:
            log.warning("receipts not checked (%s); retried", type(exc).__name__)
            self._keep_pending(pending)
            return
        now = self._clock.now()
        for update, conversation, device in allowed:
            key = (update.conversation, update.person_id, update.kind)
            if update.seq > self._unwritten.get(key, (0, ""))[0]:
                self._unwritten[key] = (update.seq, device)
            self.tell(conversation, update.person_id, update.kind, update.seq, now)

    def unwritten(self, conversation: str) -> dict[str, dict[str, int]]:
        """Receipts of ``conversation`` told but not written yet (person → kind → seq)."""
        found: dict[str, dict[str, int]] = {}
        for (conversation_id, person_id, kind), (seq, _) in self._unwritten.items():
            if conversation_id == conversation:
                found.setdefault(person_id, {})[kind] = seq
        return found

    async def flush(self) -> None:
        """Write the buffered cursors and receipts; what fails is kept for the next time.

        Only for devices that still exist: a device removed (or a person
        erased, RGPD art. 17) since it acknowledged leaves nothing behind.
        """
        await self.tell_pending()
        cursors, self._cursors = self._cursors, {}
        unwritten, self._unwritten = self._unwritten, {}
        if not cursors and not unwritten:
            return
        now = self._clock.now()
        advances = [(d, c, seq) for d, acks in cursors.items() for c, seq in acks.items()]
        updates = [(ReceiptUpdate(c, p, k, seq), d) for (c, p, k), (seq, d) in unwritten.items()]
        try:
            for part in chunks(advances):
                async with self._gaps.turn(FLUSH_PATIENCE, SETTLE):
                    live = await self._live({d for d, _, _ in part})
                    by_device: dict[str, dict[str, int]] = {}
                    for device_id, conversation_id, seq in part:
                        if device_id in live:
                            by_device.setdefault(device_id, {})[conversation_id] = seq
                    await self._store.cursors.advance_many(by_device, now)
            for receipts in chunks(updates):
                async with self._gaps.turn(FLUSH_PATIENCE, SETTLE):
                    live = await self._live({d for _, d in receipts})
                    kept = [update for update, device_id in receipts if device_id in live]
                    await self._store.receipts.advance_many(kept, now, self._node)
        except (DatabaseUnavailable, DriverError) as exc:
            log.warning("cursors and receipts not written (%s); retried", type(exc).__name__)
            for device_id, acks in cursors.items():
                mine = self._cursors.setdefault(device_id, {})
                for conversation_id, seq in acks.items():
                    mine[conversation_id] = max(seq, mine.get(conversation_id, 0))
            for key, (seq, device_id) in unwritten.items():
                if seq > self._unwritten.get(key, (0, ""))[0]:
                    self._unwritten[key] = (seq, device_id)

    async def _live(self, devices: set[str]) -> set[str]:
        """Of ``devices``, those that still exist.

        Checked in each chunk's turn, just before it is written, so that a
        person erased meanwhile (RGPD art. 17) leaves no cursor or receipt behind.
        """
        return set(await self._store.enrolment.existing_devices(sorted(devices)))

    def _keep_pending(self, pending: dict[tuple[str, str, Kind], tuple[int, str]]) -> None:
        for key, (seq, device_id) in pending.items():
            if seq > self._pending.get(key, (0, ""))[0]:
                self._pending[key] = (seq, device_id)

    async def _allowed(
        self, pending: Mapping[tuple[str, str, Kind], tuple[int, str]]
    ) -> list[tuple[ReceiptUpdate, Conversation, str]]:
        """The receipts a member may give (seq not beyond the head) and the school allows."""
        allowed = []
        for (conversation_id, person_id, kind), (seq, device) in pending.items():
            conversation = await self._lookups.conversation(conversation_id)
            if conversation is None or person_id not in conversation.members:
                continue
            if seq > max(conversation.seq, self._recent.latest(conversation_id)):
                conversation = await self._store.conversations.get(conversation_id)
                if conversation is None or seq > conversation.seq:
                    continue  # beyond anything stored: a confused or lying device
            settings = await self.settings(conversation.uai)
            if settings.delivered_receipts if kind == "delivered" else settings.read_receipts:
                update = ReceiptUpdate(conversation_id, person_id, kind, seq)
                allowed.append((update, conversation, device))
        return allowed

    async def settings(self, uai: str) -> SchoolSettings:
        """The school's receipt settings (kept :data:`SETTINGS_TTL_SECONDS`, one read per miss)."""
        found = await self._settings.get(uai, self._store.directory.school_settings)
        return found or SchoolSettings()

    def forget_settings(self, uai: str) -> None:
        self._settings.forget(uai)

    # --- telling --------------------------------------------------------------

    def tell(
        self, conversation: Conversation, person_id: str, kind: str, seq: int, at: datetime
    ) -> None:
        """Send a ``receipt`` frame to the devices here of the people it concerns."""
        key = (conversation.id, person_id, kind)
        before = self._told.get(key, 0)
        if seq <= before:
            return  # told already (by this node, or seen again through the stream)
        self._told[key] = seq
        self._told.move_to_end(key)
        if len(self._told) > TOLD_ENTRIES:
            self._told.popitem(last=False)
        if conversation.kind == ConversationKind.DIRECT:
            people = set(conversation.members)
        else:
            people = self._recent.senders(conversation.id, before, seq) | {person_id}
            people &= set(conversation.members)
        frame = ReceiptFrame(
            conversation=conversation.id,
            seq=seq,
            person_id=person_id,
            kind=kind,
            ts=int(at.timestamp() * 1000),
        )
        text = dump_frame(frame)
        for connection in self._hub.of_people(sorted(people)):
            connection.notify("receipt", text)
