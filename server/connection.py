"""One device's WebSocket connection: challenge login, then send / deliver / ack.

Tasks of a connection live in one ``asyncio.TaskGroup`` (STYLE.md, structured
concurrency): the reader (frames from the device), the writer (the outbox to
the socket), the catch-up (stored envelopes to the outbox) and the overflow
watch (closes a slow reader). When any of them ends the connection, the group
cancels the others; nothing outlives the connection.

Close codes (docs/protocol.md, "Close codes"): 1001 server going away, 1008
policy violation (failed login, repeated bad frames), 1009 frame too big,
4001 superseded by a newer connection of the same device, 4002 slow reader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime, timedelta

from aiohttp import WSMsgType, web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from crypto import FrankingKeyring
from protocol import (
    AckFrame,
    AuthFrame,
    ChallengeFrame,
    DeliverFrame,
    ErrorCode,
    ErrorFrame,
    ProtocolError,
    ReadyFrame,
    SendFrame,
    SentFrame,
    auth_message,
    dump_frame,
    parse_client_frame,
)
from protocol.session import ConnectionLifecycle, ConnectionState
from server.clock import Clock
from server.config import Settings
from server.device_sessions import DeviceSessions
from server.hub import Hub
from server.metrics import Metrics
from server.outbox import Outbox
from storage.database import Store
from storage.envelopes import OutgoingMessage, StoredEnvelope
from storage.errors import DatabaseUnavailable, DriverError
from storage.ids import derived_id
from storage.models import Device

log = logging.getLogger(__name__)

CLOSE_SUPERSEDED = 4001
CLOSE_SLOW_READER = 4002
CLOSE_POLICY = 1008


class _Closed(Exception):
    """Ends a connection's task group (the reason is already logged and counted)."""


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def deliver_frame(envelope: StoredEnvelope) -> DeliverFrame:
    return DeliverFrame(
        envelope_id=envelope.envelope_id,
        message_id=envelope.message_id,
        sender_device=envelope.sender_device,
        sender_person=envelope.sender_person,
        conversation=envelope.conversation,
        ciphertext=envelope.ciphertext,
        group=envelope.group,
        ts=millis(envelope.created_at),
        commitment=envelope.commitment,
        stamp=envelope.stamp,
    )


class DeviceConnection:
    """Serves one WebSocket from challenge to close."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        settings: Settings,
        store: Store,
        hub: Hub,
        metrics: Metrics,
        clock: Clock,
        franking: FrankingKeyring,
        sessions: DeviceSessions,
        nonce: bytes,
    ) -> None:
        self.ws = ws
        self.settings = settings
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.clock = clock
        self.franking = franking
        self.sessions = sessions
        self.nonce = nonce
        self.lifecycle = ConnectionLifecycle()
        self.outbox = Outbox(settings.outbound_queue_bytes)
        self.device: Device | None = None
        self.device_id = ""
        self.live = False
        self._bad_frames = 0
        self._superseded = asyncio.Event()

    # --- life cycle -----------------------------------------------------------

    async def run(self) -> None:
        """Challenge, authenticate, then serve until either side closes."""
        challenge = ChallengeFrame(nonce=self.nonce, origin=self.settings.public_origin)
        await self._send_now("challenge", dump_frame(challenge))
        device = await self._authenticate()
        if device is None:
            return
        self.device, self.device_id = device, device.id
        self.lifecycle.move(ConnectionState.AUTHENTICATED)
        previous = self.hub.attach(self)
        if previous is not None:
            await previous.supersede()
        self.metrics.connected_devices.inc()
        try:
            self.outbox.offer("ready", dump_frame(await self._ready_frame(device)))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._writer())
                group.create_task(self._catch_up())
                group.create_task(self._watch_overflow())
                group.create_task(self._watch_superseded())
                group.create_task(self._reader())
        except* _Closed:
            pass
        finally:
            self.hub.detach(self)
            self.metrics.connected_devices.dec()
            self.lifecycle.close()

    async def _ready_frame(self, device: Device) -> ReadyFrame:
        token, expires = self.sessions.issue(device.id, self.clock.now())
        return ReadyFrame(
            device_id=device.id,
            person_id=device.person_id,
            session_token=token,
            session_expires=expires,
            prekeys_left=await self.store.prekeys.count(device.id),
        )

    async def supersede(self) -> None:
        """A newer connection of this device took over: close this one (4001)."""
        self._superseded.set()

    def deliver_live(self, kind: str, text: str) -> None:
        """Offer a frame for live delivery; dropped until catch-up has finished."""
        if self.live:
            self.outbox.offer(kind, text)

    async def _close(self, code: int, message: str) -> None:
        self.metrics.closes.labels(str(code)).inc()
        self.lifecycle.close()
        await self.ws.close(code=code, message=message.encode())

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
        device = await self.store.enrolment.device(frame.device_id)
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
            except ConnectionResetError:
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

    async def _catch_up(self) -> None:
        """Stream stored envelopes, oldest first, then switch to live delivery."""
        page_size = self.settings.catch_up_page
        last: StoredEnvelope | None = None
        while True:
            page = await self.store.envelopes.pending(self.device_id, page_size, after=last)
            for envelope in page:
                await self.outbox.put("deliver", dump_frame(deliver_frame(envelope)))
            if page:
                last = page[-1]
            if len(page) < page_size:
                break
        self.live = True
        # What was stored while the last page was read: delivered now, perhaps
        # twice (at least once; the device deduplicates by envelope id).
        for envelope in await self.store.envelopes.pending(self.device_id, page_size, after=last):
            await self.outbox.put("deliver", dump_frame(deliver_frame(envelope)))

    async def _reader(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.TEXT:
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
        if isinstance(frame, SendFrame):
            await self._on_send(frame)
        elif isinstance(frame, AckFrame):
            await self._on_ack(frame)
        else:
            await self._bad_frame(ProtocolError(ErrorCode.BAD_FRAME, "already authenticated"))

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
        assert self.device is not None  # noqa: S101 - rule 3 of protocol.session
        ref = frame.client_msg_id
        targets = frame.recipients
        try:
            known = await self.store.enrolment.existing_devices(targets)
            missing = [t for t in targets if t not in known]
            if missing:
                listed = ", ".join(missing[:5])
                self._error(ErrorCode.UNKNOWN_DEVICE, f"unknown device(s): {listed}", ref)
                return
            message = self._message(frame)
            started = time.perf_counter()
            header = await self.store.envelopes.store(
                message,
                expires_at=message.created_at + timedelta(days=self.settings.undelivered_days),
            )
            self.metrics.store_latency.observe(time.perf_counter() - started)
        except (DatabaseUnavailable, DriverError):
            log.warning("device %s: store failed for a send", self.device_id)
            self._error(ErrorCode.STORE_UNAVAILABLE, "not stored; retry with the same id", ref)
            return
        sent = SentFrame(
            client_msg_id=ref,
            message_id=message.message_id,
            ts=millis(header.created_at),
            stamp=header.stamp,
        )
        self.outbox.offer("sent", dump_frame(sent))
        # A retry delivers again (at least once): the first attempt's live
        # delivery may never have happened. It carries the first write's header.
        stored = dataclasses.replace(message, created_at=header.created_at, stamp=header.stamp)
        for envelope in self.store.envelopes.envelopes_of(stored):
            self.hub.deliver(envelope.device_id, "deliver", dump_frame(deliver_frame(envelope)))

    def _message(self, frame: SendFrame) -> OutgoingMessage:
        assert self.device is not None  # noqa: S101 - rule 3 of protocol.session
        now = self.clock.now()
        stamp = None
        if frame.commitment is not None:
            stamp = self.franking.stamp(
                frame.commitment, self.device.id, frame.conversation or "", millis(now)
            )
        return OutgoingMessage(
            message_id=derived_id("m", self.device.id, frame.client_msg_id),
            sender_device=self.device.id,
            sender_person=self.device.person_id,
            conversation=frame.conversation,
            created_at=now,
            pairwise={e.device_id: e.ciphertext for e in frame.envelopes},
            group_ciphertext=frame.group.ciphertext if frame.group else None,
            group_devices=tuple(frame.group.device_ids) if frame.group else (),
            commitment=frame.commitment,
            stamp=stamp,
        )

    async def _on_ack(self, frame: AckFrame) -> None:
        try:
            await self.store.envelopes.acknowledge(self.device_id, frame.envelope_ids)
        except (DatabaseUnavailable, DriverError):
            # Not fatal: unacknowledged envelopes are delivered again later.
            log.warning("device %s: ack not stored", self.device_id)
