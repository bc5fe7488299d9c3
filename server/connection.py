"""One device's WebSocket connection: challenge login, then send / deliver / ack.

Tasks of a connection live in one ``asyncio.TaskGroup`` (STYLE.md, structured
concurrency), entered by the connection's own handler task, which then reads
frames from the device until the connection ends. The other tasks exist only
while they have work (docs/architecture.md, "Per connection"): the catch-up
(stored messages to the outbox, ends when the device is live), the writer
(started when a frame enters an empty outbox, ends when it is empty again),
the gap resolver (started when a live message waits for a lower seq, see
``server.ordering``), and the closer (started by the first close reason: slow
reader, superseded, logged out). An idle connection holds its handler task
and nothing else. When one of them ends the connection, the group cancels the
others; nothing outlives the connection. A send's durable write is answered
by a callback on its future, not by a task.

Delivery (docs/protocol.md, "Delivery"): at login the device first receives,
per conversation and in seq order, what it has not acknowledged (catch-up),
then live messages, held back where needed so that each conversation stays in
order. Acknowledgements are cumulative per conversation and move the device's
cursor; unacknowledged messages come again after a reconnect (at least once).

Close codes (docs/protocol.md, "Close codes"): 1001 server going away, 1008
policy violation (failed login, repeated bad frames), 1009 frame too big,
4001 superseded by a newer connection of the same device, 4002 slow reader,
4003 logged out by the school (docs/moderation.md, "Incident controls").
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, NamedTuple

from aiohttp import WSMessage, WSMsgType, web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from protocol import (
    AckFrame,
    AuthFrame,
    ChallengeFrame,
    ErrorCode,
    ErrorFrame,
    ExpiredFrame,
    ProtocolError,
    ReadFrame,
    ReadyFrame,
    SendFrame,
    SentFrame,
    SyncedFrame,
    SyncFrame,
    auth_message,
    dump_frame,
    parse_client_frame,
)
from protocol.session import ConnectionLifecycle, ConnectionState
from server.fanout import frame_text, millis
from server.moderation_gate import SendVerdict
from server.ordering import OrderingBuffer
from server.outbox import Outbox, Waiters
from server.sequencer import SequencerClosed
from server.services import Services
from storage.conversations import ConversationKind
from storage.errors import DatabaseUnavailable, DriverError
from storage.ids import derived_id
from storage.messages import NewMessage, StoredMessage, WriteResult, seq_pages
from storage.models import Device

log = logging.getLogger(__name__)

CLOSE_SUPERSEDED = 4001
CLOSE_SLOW_READER = 4002
CLOSE_LOGGED_OUT = 4003
CLOSE_POLICY = 1008
CLOSE_WAIT = 2.0
"""Seconds a closing handshake may take before the connection is dropped."""
GAP_WAIT_SECONDS = 0.2
"""How long a held message waits for a missing lower seq before the database is asked."""
MAX_IN_FLIGHT = 64
"""Sends of one connection whose durable write may be pending at once."""

Item = tuple[str, str]


class _Closed(Exception):
    """Ends a connection's task group (the reason is already logged and counted)."""


class Identity(NamedTuple):
    """Who is logged in on a connection: what it keeps of the ``Device`` record
    (≈ 1 KiB as a pydantic model, 56 bytes as this)."""

    id: str
    person_id: str


class DeviceConnection:
    """Serves one WebSocket from challenge to close."""

    # Slots: ten thousand idle connections per node (issue 9), no __dict__ each.
    __slots__ = (
        "ws",
        "transport",
        "s",
        "settings",
        "store",
        "metrics",
        "nonce",
        "lifecycle",
        "outbox",
        "ordering",
        "device",
        "device_id",
        "person_id",
        "live",
        "_bad_frames",
        "_group",
        "_progress",
        "_ending",
        "_handling",
        "_writes",
        "_draining",
        "_drained",
        "_gap_pending",
        "_resolving",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        services: Services,
        nonce: bytes,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.s = services
        self.settings = services.settings
        self.store = services.store
        self.metrics = services.metrics
        self.nonce = nonce
        self.lifecycle = ConnectionLifecycle()
        self.outbox = Outbox(self.settings.outbound_queue_bytes, self._start_writer)
        self.ordering: OrderingBuffer[Item] = OrderingBuffer()
        self.device: Identity | None = None
        self.device_id = ""
        self.person_id = ""
        self.live = False
        self._bad_frames = 0
        self._group: asyncio.TaskGroup | None = None
        """Set while the connection is served (after login)."""
        self._progress = Waiters()
        """Wakes the waits below: a frame handled, a write answered, the drain done."""
        self._ending: tuple[int, str] | None = None
        """The first close reason (4001, 4002, 4003): the closer's code and message."""
        self._handling = False
        self._writes = 0
        """Sends whose durable write is pending (at most MAX_IN_FLIGHT)."""
        self._draining = False
        self._drained = False
        self._gap_pending = False
        self._resolving = False

    # --- life cycle -----------------------------------------------------------

    async def run(self) -> None:
        """Challenge, authenticate, then serve until either side closes.

        This coroutine lives as long as the connection: what it needs only for
        the login is held by the helpers it awaits, not by its own locals.
        """
        if not await self._log_in():
            return
        self.metrics.connected_devices.inc()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await self._start()
                await self._reader()
        except* _Closed:
            pass
        finally:
            self._group = None
            self.s.gate.controls.logout(self)
            self.s.hub.detach(self)
            self.metrics.connected_devices.dec()
            self.lifecycle.close()

    async def _log_in(self) -> bool:
        """The challenge and its answer; False if the device was refused (and closed)."""
        challenge = ChallengeFrame(nonce=self.nonce, origin=self.settings.public_origin)
        await self._send_now("challenge", dump_frame(challenge))
        device = await self._authenticate()
        if device is None:
            return False
        self.nonce = b""  # answered
        self.device = Identity(device.id, device.person_id)
        self.device_id, self.person_id = device.id, device.person_id
        self.s.lookups.remember_owner(device.id, device.person_id)
        if not await self.s.gate.controls.login(self, device.person_id, self.s.clock.now()):
            await self._refuse(ErrorCode.UNAUTHORIZED, "your school logged devices out; retry")
            return False
        self.lifecycle.move(ConnectionState.AUTHENTICATED)
        return True

    async def _start(self) -> None:
        """``ready``, then live deliveries (attached to the hub), then the catch-up."""
        if self._ending is not None:  # logged out before the group was entered
            self._spawn(self._close_for_reason)
        assert self.device is not None  # noqa: S101 - authenticated (protocol.session rule 3)
        # `ready` is the first frame after login: queue it before anything live can be.
        self._offer("ready", dump_frame(await self._ready_frame(self.device)))
        previous = self.s.hub.attach(self)
        if previous is not None:
            await previous.supersede()
        self._spawn(self._catch_up)

    async def _ready_frame(self, device: Identity) -> ReadyFrame:
        token, expires = self.s.sessions.issue(device.id, self.s.clock.now())
        return ReadyFrame(
            device_id=device.id,
            person_id=device.person_id,
            session_token=token,
            session_expires=expires,
            prekeys_left=await self.s.reads.prekeys_left(device.id),
        )

    async def drain(self, timeout: float) -> None:
        """Server shutdown: finish the frame being handled, send what it produced
        (its ``sent``), handle nothing more, close with 1001 GOING_AWAY."""
        if self.lifecycle.state is not ConnectionState.AUTHENTICATED:
            return  # still in the challenge (closed by the gateway) or already over
        self._draining = True  # the reader handles no frame after this one
        try:
            async with asyncio.timeout(timeout):
                await self._progress.until(self._idle)
        except TimeoutError:
            log.warning("device %s: frame still in flight at shutdown", self.device_id)
        try:  # the sends still being written: their `sent` goes out before the close
            async with asyncio.timeout(timeout):
                await self._progress.until(self._all_written)
        except TimeoutError:
            log.warning("device %s: writes still pending at shutdown", self.device_id)
        await self.outbox.flush(timeout)
        await self._close(1001, "server shutdown")
        self._drained = True
        self._progress.notify()

    def _idle(self) -> bool:
        return not self._handling

    def _all_written(self) -> bool:
        return self._writes == 0

    def _is_drained(self) -> bool:
        return self._drained

    async def supersede(self) -> None:
        """A newer connection of this device took over: close this one (4001)."""
        self._end(CLOSE_SUPERSEDED, "superseded by a newer connection")

    def log_out(self) -> None:
        """The school logged every device out (an incident control): close with 4003."""
        self._end(CLOSE_LOGGED_OUT, "logged out by your school; log in again")

    def deliver_live(self, conversation: str, seq: int, kind: str, text: str) -> None:
        """A message for this device was stored: deliver it in its conversation's order."""
        for item in self.ordering.offer(conversation, seq, (kind, text)):
            self._offer(*item)
        if self.live and self.ordering.gaps():
            self._gap_found()

    def notify(self, kind: str, text: str) -> None:
        """An unsequenced frame (``prekeys_low``)."""
        self._offer(kind, text)

    def _offer(self, kind: str, text: str) -> None:
        """Queue a frame; a full outbox closes the connection as a slow reader (4002)."""
        if not self.outbox.offer(kind, text):
            if self._ending is None:
                log.info("device %s: slow reader, closing", self.device_id)
            self._end(CLOSE_SLOW_READER, "slow reader: reconnect and catch up")

    def _end(self, code: int, message: str) -> None:
        """The one close-reason path (4001, 4002, 4003): the first reason starts
        the closer, which closes the socket and ends the connection."""
        if self._ending is not None:
            return
        self._ending = (code, message)
        self._spawn(self._close_for_reason)  # before `run` enters the group: `run` starts it

    async def _close_for_reason(self) -> None:
        assert self._ending is not None  # noqa: S101 - started by _end
        await self._close(*self._ending)
        raise _Closed

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Start ``work()`` in the connection's task group; False if the connection
        is not served (not yet, or no longer)."""
        if self._group is None:
            return False
        coroutine = work()
        try:
            self._group.create_task(coroutine)
        except RuntimeError:  # the group is shutting down: the connection is ending
            coroutine.close()
            return False
        return True

    async def _close(self, code: int, message: str) -> None:
        self.metrics.closes.labels(str(code)).inc()
        self.lifecycle.close()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), CLOSE_WAIT)
        except ConnectionError:
            pass  # the peer is gone already: nothing left to close politely
        except TimeoutError:
            # A reader that does not read cannot receive a close frame either.
            if self.transport is not None:
                self.transport.abort()

    # --- login ----------------------------------------------------------------

    async def _authenticate(self) -> Device | None:
        try:
            msg = await self.ws.receive(timeout=self.settings.auth_timeout_seconds)
        except TimeoutError:
            await self._refuse(ErrorCode.AUTH_FAILED, "no answer to the challenge in time")
            return None
        if msg.type != WSMsgType.TEXT:
            if msg.type == WSMsgType.BINARY:
                await self._refuse(ErrorCode.BAD_FRAME, "frames are JSON text")
            return None
        try:
            frame = parse_client_frame(msg.data)
        except ProtocolError as exc:
            await self._refuse(exc.code, exc.message)
            return None
        self.metrics.count(self.metrics.frames_in, frame.type)
        if not isinstance(frame, AuthFrame):
            await self._refuse(ErrorCode.NOT_AUTHENTICATED, "answer the challenge first")
            return None
        device = await self.s.reads.device(frame.device_id)
        if device is None or device.revoked_at is not None or not self._signed(device, frame):
            await self._refuse(ErrorCode.AUTH_FAILED, "unknown device or bad signature")
            return None
        return device

    def _signed(self, device: Device, frame: AuthFrame) -> bool:
        message = auth_message(self.settings.public_origin, self.nonce)
        try:
            VerifyKey(device.identity_key).verify(message, frame.signature)
        except (BadSignatureError, ValueError):
            return False
        return True

    async def _refuse(self, code: ErrorCode, message: str) -> None:
        self.metrics.errors.labels(code.value).inc()
        await self._send_now("error", dump_frame(ErrorFrame(code=code, message=message)))
        await self._close(CLOSE_POLICY, code.value)

    # --- tasks ----------------------------------------------------------------

    async def _send_now(self, kind: str, text: str) -> None:
        await self.ws.send_str(text)
        self.metrics.count(self.metrics.frames_out, kind)

    def _start_writer(self) -> None:
        self._spawn(self._writer)

    async def _writer(self) -> None:
        """Write the outbox until it is empty (the outbox starts it again)."""
        while (item := self.outbox.next()) is not None:
            try:
                await self._send_now(*item)
            except ConnectionError:
                if self.lifecycle.state is not ConnectionState.AUTHENTICATED:
                    return  # a close is under way: it ends the connection
                raise _Closed from None

    async def _catch_up(self) -> None:
        """Per conversation, what the device has not acknowledged, in seq order."""
        assert self.device is not None  # noqa: S101 - authenticated (protocol.session rule 3)
        heads = await self.s.reads.heads(self.device.person_id)
        cursors = await self.s.reads.cursors(self.device_id)
        page = self.settings.catch_up_page
        for conversation, head in heads.items():
            acked = cursors.get(conversation, 0)
            for item in self.ordering.acknowledged_through(conversation, acked):
                await self.outbox.put(*item)
            if head <= acked:
                continue
            # Expired (TTL) or beyond the backlog bound: said once, then skipped.
            first = await self.s.reads.first_seq(conversation, head)
            start = acked
            if first is not None and first > acked + 1 and conversation in cursors:
                start = first - 1
            start = max(start, head - self.settings.max_backlog)
            if start > acked:
                expired = ExpiredFrame(conversation=conversation, from_seq=acked + 1, to_seq=start)
                await self.outbox.put("expired", dump_frame(expired))
                for item in self.ordering.skip_through(conversation, start):
                    await self.outbox.put(*item)
            for low, high in seq_pages(start, head, page):
                found = await self.s.reads.messages(self.device_id, conversation, low, high)
                for message in found:
                    await self._put_ordered(message)
                self.metrics.deliveries.labels("catch_up").inc(len(found))
            for item in self.ordering.skip_through(conversation, head):
                await self.outbox.put(*item)
        self.live = True
        if self.ordering.gaps():
            self._gap_found()

    async def _put_ordered(self, message: StoredMessage) -> None:
        for item in self.ordering.offer(message.conversation, message.seq, frame_text(message)):
            await self.outbox.put(*item)

    def _gap_found(self) -> None:
        """A live message waits for a lower seq: start the resolver unless it runs."""
        self._gap_pending = True
        if not self._resolving:
            self._resolving = self._spawn(self._resolve_gaps)

    async def _resolve_gaps(self) -> None:
        """Fill or skip gaps that a live message has been waiting on (ordering rule 2);
        ends when no gap was found during its last pass."""
        try:
            while self._gap_pending:
                self._gap_pending = False
                await asyncio.sleep(GAP_WAIT_SECONDS)
                for conversation, (low, high) in self.ordering.gaps().items():
                    found = await self.store.messages.for_device(
                        self.device_id, conversation, low - 1, high
                    )
                    for message in found:
                        await self._put_ordered(message)
                    for item in self.ordering.skip_through(conversation, high, late=True):
                        await self.outbox.put(*item)
        finally:
            self._resolving = False

    async def _reader(self) -> None:
        """Frames from the device, one at a time, in the connection's handler task
        (no local keeps the last frame while the next is awaited)."""
        while await self._on_message(await self.ws.receive()):
            pass

    async def _on_message(self, msg: WSMessage) -> bool:
        """Handle one message; False if the connection ends and the closer finishes it.

        Raises:
            _Closed: the connection ends here.
        """
        if self._draining:  # shutdown: what was not handled was not acknowledged
            await self._progress.until(self._is_drained)
            raise _Closed
        if msg.type == WSMsgType.TEXT:
            self._handling = True
            try:
                await self._on_text(msg.data)
            finally:
                self._handling = False
                self._progress.notify()
        elif msg.type == WSMsgType.BINARY:
            await self._bad_frame(ProtocolError(ErrorCode.BAD_FRAME, "frames are JSON text"))
        else:  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp answers 1009 itself)
            if msg.type == WSMsgType.ERROR:
                self.metrics.closes.labels(str(self.ws.close_code)).inc()
            if self._ending is not None:
                return False  # the closer finishes the closing handshake, then ends the group
            raise _Closed
        return True

    # --- frames ---------------------------------------------------------------

    async def _on_text(self, data: str) -> None:
        try:
            frame = parse_client_frame(data)
        except ProtocolError as exc:
            self.metrics.frames_in.labels("invalid").inc()
            await self._bad_frame(exc)
            return
        self.metrics.count(self.metrics.frames_in, frame.type)
        if not self.s.gate.controls.valid(self):
            self.log_out()
            return
        try:
            if isinstance(frame, SendFrame):
                await self._on_send(frame)
            elif isinstance(frame, AckFrame):
                self._on_ack(frame)
            elif isinstance(frame, SyncFrame):
                await self._on_sync(frame)
            elif isinstance(frame, ReadFrame):
                self.s.receipts.record(
                    self.device_id, self.person_id, {frame.conversation: frame.seq}, "read"
                )
            else:
                await self._bad_frame(ProtocolError(ErrorCode.BAD_FRAME, "already authenticated"))
        except (DatabaseUnavailable, DriverError):
            log.warning("device %s: database error on a %s frame", self.device_id, frame.type)
            ref = frame.client_msg_id if isinstance(frame, SendFrame) else None
            self._error(ErrorCode.STORE_UNAVAILABLE, "the database is unavailable; retry", ref)

    async def _bad_frame(self, exc: ProtocolError, ref: str | None = None) -> None:
        self._bad_frames += 1
        self._error(exc.code, exc.message, ref)
        if self._bad_frames >= self.settings.bad_frames_before_close:
            await self.outbox.flush(timeout=1.0)  # the errors first, then the close
            await self._close(CLOSE_POLICY, "too many invalid frames")
            raise _Closed

    def _error(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        self.metrics.errors.labels(code.value).inc()
        self._offer("error", dump_frame(ErrorFrame(code=code, message=message, ref=ref)))

    async def _on_send(self, frame: SendFrame) -> None:
        assert self.device is not None  # noqa: S101 - authenticated (protocol.session rule 3)
        ref = frame.client_msg_id
        conversation = await self.s.lookups.conversation(frame.conversation)
        me = self.device.person_id
        if conversation is None or me not in conversation.members or conversation.archived_at:
            self._error(ErrorCode.UNKNOWN_CONVERSATION, "no such conversation for you", ref)
            return
        if conversation.kind == ConversationKind.ANNOUNCEMENT and me not in conversation.owners:
            self._error(ErrorCode.NOT_ALLOWED, "announcements are one-way", ref)
            return
        targets = frame.recipients
        owners = await self.s.lookups.device_owners(targets)
        missing = [t for t in targets if t not in owners]
        if missing:
            listed = ", ".join(missing[:5])
            self._error(ErrorCode.UNKNOWN_DEVICE, f"unknown device(s): {listed}", ref)
            return
        outsiders = sorted({d for d, p in owners.items() if p not in conversation.members})
        if outsiders:
            listed = ", ".join(outsiders[:5])
            self._error(ErrorCode.NOT_A_MEMBER, f"device(s) of non-members: {listed}", ref)
            return
        verdict = await self.s.gate.check_send(me, conversation)
        if verdict.code is not None:
            self.metrics.errors.labels(verdict.code.value).inc()
            self._offer("error", dump_frame(verdict.error_frame(ref)))
            return
        message = verdict.applied(self._message(frame), owners)
        try:
            written = self.s.sequencer.enqueue(message)
        except SequencerClosed:
            self._error(ErrorCode.STORE_UNAVAILABLE, "the server is shutting down; retry", ref)
            return
        # Pipelining: the next frame is read while this write is in flight (its
        # place in the conversation is already fixed), so that concurrent sends
        # share a group commit; at most MAX_IN_FLIGHT sends wait at once. The
        # write's future answers the send (a callback, no task per send).
        self._writes += 1
        written.add_done_callback(
            partial(self._answer_send, ref, message, conversation.id, verdict)
        )
        await self._progress.until(self._may_write)

    def _may_write(self) -> bool:
        return self._writes <= MAX_IN_FLIGHT

    def _answer_send(
        self,
        ref: str,
        message: NewMessage,
        conversation_id: str,
        verdict: SendVerdict,
        written: asyncio.Future[WriteResult],
    ) -> None:
        self._writes -= 1
        self._progress.notify()
        failure = None if written.cancelled() else written.exception()
        if written.cancelled() or failure is not None:
            if failure is not None and not isinstance(
                failure, (DatabaseUnavailable, DriverError, KeyError)
            ):
                log.error("device %s: a send failed", self.device_id, exc_info=failure)
            else:
                log.warning("device %s: a send was not stored", self.device_id)
            self._error(ErrorCode.STORE_UNAVAILABLE, "not stored; retry with the same id", ref)
            return
        result = written.result()
        # Built from validated input and stored values: not validated again (the
        # frame's patterns cost µs per message); clients validate what they read.
        sent = SentFrame.model_construct(
            client_msg_id=ref,
            message_id=message.message_id,
            conversation=conversation_id,
            seq=result.seq,
            ts=millis(result.created_at),
            stamp=result.stamp,
            **verdict.told(),
        )
        self._offer("sent", dump_frame(sent))
        for item in self.ordering.skip(conversation_id, result.seq):
            self._offer(*item)

    def _message(self, frame: SendFrame) -> NewMessage:
        assert self.device is not None  # noqa: S101 - authenticated (protocol.session rule 3)
        now = self.s.clock.now()
        stamp = None
        if frame.commitment is not None:
            stamp = self.s.franking.stamp(
                frame.commitment, self.device.id, frame.conversation, millis(now)
            )
        return NewMessage(
            message_id=derived_id("m", self.device.id, frame.client_msg_id),
            conversation=frame.conversation,
            sender_device=self.device.id,
            sender_person=self.device.person_id,
            created_at=now,
            pairwise={e.device_id: e.ciphertext for e in frame.envelopes},
            group_ciphertext=frame.group.ciphertext if frame.group else None,
            group_devices=tuple(frame.group.device_ids) if frame.group else (),
            commitment=frame.commitment,
            stamp=stamp,
        )

    def _on_ack(self, frame: AckFrame) -> None:
        highest: dict[str, int] = defaultdict(int)
        for envelope in frame.envelope_ids:
            conversation, _, seq = envelope.rpartition(":")
            highest[conversation] = max(highest[conversation], int(seq))
        self.s.receipts.acknowledge(self.device_id, self.person_id, highest)

    async def _on_sync(self, frame: SyncFrame) -> None:
        assert self.device is not None  # noqa: S101 - authenticated (protocol.session rule 3)
        conversation = await self.store.conversations.get(frame.conversation)
        if conversation is None or self.device.person_id not in conversation.members:
            self._error(
                ErrorCode.UNKNOWN_CONVERSATION, "no such conversation for you", frame.conversation
            )
            return
        head = self.s.reads.head(conversation)
        for low, high in seq_pages(frame.since, head, self.settings.catch_up_page):
            found = await self.store.messages.for_device(self.device_id, conversation.id, low, high)
            for message in found:
                await self.outbox.put(*frame_text(message))
        synced = SyncedFrame(conversation=conversation.id, head=head)
        await self.outbox.put("synced", dump_frame(synced))
