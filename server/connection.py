"""One device's WebSocket connection: challenge login, then send / deliver / ack.

Tasks of a connection live in one ``asyncio.TaskGroup`` (STYLE.md, structured
concurrency): the reader (frames from the device), the writer (the outbox to
the socket), the catch-up (stored messages to the outbox), the gap resolver
(see ``server.ordering``), and two watches that close the connection (slow
reader, superseded). When one of them ends the connection, the group cancels
the others; nothing outlives the connection.

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

from aiohttp import WSMsgType, web
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
from server.fanout import frame_for, millis
from server.moderation_gate import SendVerdict
from server.ordering import OrderingBuffer
from server.outbox import Outbox
from server.sequencer import SequencerClosed
from server.services import Services
from storage.conversations import ConversationKind
from storage.errors import DatabaseUnavailable, DriverError
from storage.ids import derived_id
from storage.messages import NewMessage, StoredMessage, WriteResult
from storage.models import Device

log = logging.getLogger(__name__)

CLOSE_SUPERSEDED = 4001
CLOSE_SLOW_READER = 4002
CLOSE_LOGGED_OUT = 4003
CLOSE_POLICY = 1008
CLOSE_WAIT = 2.0
"""Seconds a closing handshake may take before the connection is dropped."""
GAP_WAIT_SECONDS = 0.2
MAX_IN_FLIGHT = 64
"""Sends of one connection whose durable write may be pending at once."""
"""How long a held message waits for a missing lower seq before the database is asked."""

Item = tuple[str, str]


class _Closed(Exception):
    """Ends a connection's task group (the reason is already logged and counted)."""


class DeviceConnection:
    """Serves one WebSocket from challenge to close."""

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
        self.outbox = Outbox(self.settings.outbound_queue_bytes)
        self.ordering: OrderingBuffer[Item] = OrderingBuffer()
        self.device: Device | None = None
        self.device_id = ""
        self.person_id = ""
        self.live = False
        self._bad_frames = 0
        self._superseded = asyncio.Event()
        self._logged_out = asyncio.Event()
        self._gap = asyncio.Event()
        self._draining = False
        self._drained = asyncio.Event()
        self._handling = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._group: asyncio.TaskGroup | None = None

    # --- life cycle -----------------------------------------------------------

    async def run(self) -> None:
        """Challenge, authenticate, then serve until either side closes."""
        challenge = ChallengeFrame(nonce=self.nonce, origin=self.settings.public_origin)
        await self._send_now("challenge", dump_frame(challenge))
        device = await self._authenticate()
        if device is None:
            return
        self.device, self.device_id, self.person_id = device, device.id, device.person_id
        if not await self.s.gate.controls.login(self, device.person_id, self.s.clock.now()):
            await self._refuse(ErrorCode.UNAUTHORIZED, "your school logged devices out; retry")
            return
        self.lifecycle.move(ConnectionState.AUTHENTICATED)
        # `ready` is the first frame after login: queue it before anything live can be.
        self.outbox.offer("ready", dump_frame(await self._ready_frame(device)))
        previous = self.s.hub.attach(self)
        if previous is not None:
            await previous.supersede()
        self.metrics.connected_devices.inc()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._writer())
                group.create_task(self._catch_up())
                group.create_task(self._resolve_gaps())
                group.create_task(self._watch_overflow())
                group.create_task(self._watch_superseded())
                group.create_task(self._watch_logged_out())
                group.create_task(self._reader())
        except* _Closed:
            pass
        finally:
            self.s.gate.controls.logout(self)
            self.s.hub.detach(self)
            self.metrics.connected_devices.dec()
            self.lifecycle.close()

    async def _ready_frame(self, device: Device) -> ReadyFrame:
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
        self._draining = True
        try:
            await asyncio.wait_for(self._handling.acquire(), timeout)
        except TimeoutError:
            log.warning("device %s: frame still in flight at shutdown", self.device_id)
        try:  # the sends still being written: their `sent` goes out before the close
            async with asyncio.timeout(timeout):
                for _ in range(MAX_IN_FLIGHT):
                    await self._in_flight.acquire()
        except TimeoutError:
            log.warning("device %s: writes still pending at shutdown", self.device_id)
        await self.outbox.flush(timeout)
        await self._close(1001, "server shutdown")
        self._drained.set()

    async def supersede(self) -> None:
        """A newer connection of this device took over: close this one (4001)."""
        self._superseded.set()

    def deliver_live(self, conversation: str, seq: int, kind: str, text: str) -> None:
        """A message for this device was stored: deliver it in its conversation's order."""
        for item in self.ordering.offer(conversation, seq, (kind, text)):
            self.outbox.offer(*item)
        if self.live and self.ordering.gaps():
            self._gap.set()

    def notify(self, kind: str, text: str) -> None:
        """An unsequenced frame (``prekeys_low``)."""
        self.outbox.offer(kind, text)

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
        self.metrics.frames_in.labels(frame.type).inc()
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
        self.metrics.frames_out.labels(kind).inc()

    async def _writer(self) -> None:
        while True:
            kind, text = await self.outbox.get()
            try:
                await self._send_now(kind, text)
            except ConnectionError:
                raise _Closed from None
            self.outbox.task_done()

    async def _watch_overflow(self) -> None:
        await self.outbox.overflowed.wait()
        log.info("device %s: slow reader, closing", self.device_id)
        await self._close(CLOSE_SLOW_READER, "slow reader: reconnect and catch up")
        raise _Closed

    async def _watch_superseded(self) -> None:
        await self._superseded.wait()
        await self._close(CLOSE_SUPERSEDED, "superseded by a newer connection")
        raise _Closed

    def log_out(self) -> None:
        """The school logged every device out (an incident control): close with 4003."""
        self._logged_out.set()

    async def _watch_logged_out(self) -> None:
        await self._logged_out.wait()
        await self._close(CLOSE_LOGGED_OUT, "logged out by your school; log in again")
        raise _Closed

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
            first = await self.s.reads.first_seq(conversation)
            start = acked
            if first is not None and first > acked + 1 and conversation in cursors:
                start = first - 1
            start = max(start, head - self.settings.max_backlog)
            if start > acked:
                expired = ExpiredFrame(conversation=conversation, from_seq=acked + 1, to_seq=start)
                await self.outbox.put("expired", dump_frame(expired))
                for item in self.ordering.skip_through(conversation, start):
                    await self.outbox.put(*item)
            after = start
            while after < head:
                found = await self.s.reads.messages(
                    self.device_id, conversation, after, page, upto=head
                )
                for message in found:
                    await self._put_ordered(message)
                self.metrics.deliveries.labels("catch_up").inc(len(found))
                if len(found) < page:
                    break
                after = found[-1].seq
            for item in self.ordering.skip_through(conversation, head):
                await self.outbox.put(*item)
        self.live = True
        if self.ordering.gaps():
            self._gap.set()

    async def _put_ordered(self, message: StoredMessage) -> None:
        frame = frame_for(message)
        for item in self.ordering.offer(
            message.conversation, message.seq, (frame.type, dump_frame(frame))
        ):
            await self.outbox.put(*item)

    async def _resolve_gaps(self) -> None:
        """Fill or skip gaps that a live message has been waiting on (ordering rule 2)."""
        while True:
            await self._gap.wait()
            self._gap.clear()
            await asyncio.sleep(GAP_WAIT_SECONDS)
            for conversation, (low, high) in self.ordering.gaps().items():
                found = await self.store.messages.for_device(
                    self.device_id, conversation, low - 1, high - low + 1, upto=high
                )
                for message in found:
                    await self._put_ordered(message)
                for item in self.ordering.skip_through(conversation, high, late=True):
                    await self.outbox.put(*item)

    async def _reader(self) -> None:
        while True:
            msg = await self.ws.receive()
            if self._draining:  # shutdown: what was not handled was not acknowledged
                await self._drained.wait()
                raise _Closed
            if msg.type == WSMsgType.TEXT:
                async with self._handling:
                    await self._on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await self._bad_frame(ProtocolError(ErrorCode.BAD_FRAME, "frames are JSON text"))
            else:  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp answers 1009 itself)
                if msg.type == WSMsgType.ERROR:
                    self.metrics.closes.labels(str(self.ws.close_code)).inc()
                raise _Closed

    # --- frames ---------------------------------------------------------------

    async def _on_text(self, data: str) -> None:
        try:
            frame = parse_client_frame(data)
        except ProtocolError as exc:
            self.metrics.frames_in.labels("invalid").inc()
            await self._bad_frame(exc)
            return
        self.metrics.frames_in.labels(frame.type).inc()
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
        self.outbox.offer("error", dump_frame(ErrorFrame(code=code, message=message, ref=ref)))

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
            self.outbox.offer("error", dump_frame(verdict.error_frame(ref)))
            return
        message = verdict.applied(self._message(frame), owners)
        try:
            written = self.s.sequencer.enqueue(message)
        except SequencerClosed:
            self._error(ErrorCode.STORE_UNAVAILABLE, "the server is shutting down; retry", ref)
            return
        # Pipelining: the next frame is read while this write is in flight (its
        # place in the conversation is already fixed), so that concurrent sends
        # share a group commit; at most MAX_IN_FLIGHT sends wait at once.
        await self._in_flight.acquire()
        assert self._group is not None  # noqa: S101 - set while the connection runs
        self._group.create_task(self._answer_send(ref, message, conversation.id, verdict, written))

    async def _answer_send(
        self,
        ref: str,
        message: NewMessage,
        conversation_id: str,
        verdict: SendVerdict,
        written: asyncio.Future[WriteResult],
    ) -> None:
        try:
            result = await written
        except (DatabaseUnavailable, DriverError, KeyError):
            log.warning("device %s: a send was not stored", self.device_id)
            self._error(ErrorCode.STORE_UNAVAILABLE, "not stored; retry with the same id", ref)
            return
        finally:
            self._in_flight.release()
        sent = SentFrame(
            client_msg_id=ref,
            message_id=message.message_id,
            conversation=conversation_id,
            seq=result.seq,
            ts=millis(result.created_at),
            stamp=result.stamp,
            **verdict.told(),
        )
        self.outbox.offer("sent", dump_frame(sent))
        for item in self.ordering.skip(conversation_id, result.seq):
            self.outbox.offer(*item)

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
        after, page = frame.since, self.settings.catch_up_page
        head = self.s.reads.head(conversation)
        while after < head:
            found = await self.store.messages.for_device(
                self.device_id, conversation.id, after, page, upto=head
            )
            for message in found:
                frame_out = frame_for(message)
                await self.outbox.put(frame_out.type, dump_frame(frame_out))
            if len(found) < page:
                break
            after = found[-1].seq
        synced = SyncedFrame(conversation=conversation.id, head=head)
        await self.outbox.put("synced", dump_frame(synced))
