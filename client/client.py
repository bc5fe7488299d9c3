"""The asynchronous client: enrol, log in, keep keys published, send and receive.

Life cycle::

    client = await Client.enrol(url, code, path, passphrase)   # or Client.load(path, ...)
    async with client:                                          # connect, publish prekeys
        direct = await client.direct(person_id)                 # or client.create_group(...)
        await direct.send("Bonjour")
        async for message in client.messages():
            ...

Tasks: one reader task per client, owned by it and cancelled by :meth:`Client.close`;
it reads frames, decrypts, acknowledges, and reconnects with exponential backoff
(bounded attempts) after 1001 (server going away), 4002 (slow reader) or a network
drop. 1008 (policy) and 4001 (superseded by a newer connection of this device) end
the client. All key material is changed under one lock and saved to the keystore
before anything leaves the client (a crash can lose a message, never a key).

Delivery (docs/sdk.md, "At least once"): the server delivers each conversation in
seq order and acknowledgements are cumulative per conversation. Each ``deliver``
or ``event`` is processed (:mod:`client.inbound`), the state saved with its
envelope id in ``seen``, the frame acknowledged, then the message or event queued
for :meth:`Client.messages` / :meth:`Client.events`. A redelivered envelope id is
acknowledged and dropped (counted in :attr:`Client.duplicates`). An undecryptable
envelope is counted, recorded in :attr:`Client.failures` and acknowledged: nothing
is held back. Sends are kept in the keystore until their ``sent`` frame arrives and
resent with the same client message id after a reconnect (idempotent on the server).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from client.conversations import DIRECT, ConversationInfo
from client.errors import ApiError, ClientError, ConnectionFailed, NoDevices, SendRefused
from client.handle import ConversationHandle
from client.http import Contact, HttpApi, Person
from client.inbound import apply_event, open_deliver
from client.keystore import MODERATE, KdfLimits, Keystore
from client.messages import (
    DecryptFailure,
    Event,
    ExpiredMessages,
    FrankingEvidence,
    Message,
    SentReceipt,
)
from client.outbound import build_send
from client.recipients import DeviceDirectory
from client.state import DeviceState
from client.transport import open_connection
from crypto import DeviceKeys, InvalidMessage
from crypto.encoding import b64url_encode
from crypto.keys import OneTimePreKey
from protocol import (
    AckFrame,
    DeliverFrame,
    ErrorFrame,
    EventFrame,
    ExpiredFrame,
    PrekeysLowFrame,
    ProtocolError,
    SendFrame,
    SentFrame,
    SyncedFrame,
    SyncFrame,
    dump_frame,
    parse_server_frame,
)

__all__ = ["Client"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests inject their own."""

RECONNECT_CODES = frozenset({1000, 1001, 1006, 1011, 1012, 1013, 4002})
"""Close codes after which the client reconnects; others end it (1008, 4001, ...)."""
PREKEY_BATCH = 100
SIGNED_PREKEY_LIFETIME = 7 * 24 * 3600
MAX_EVENTS = 1000
"""Events kept for the application; past that the oldest are dropped (logged)."""
RETRY_CODES = frozenset({"not_a_member", "unknown_device"})
"""A send refused with these is rebuilt once from fresh membership and device lists."""


class Client:
    """One enrolled device talking to one Carnet server."""

    def __init__(
        self,
        state: DeviceState,
        keystore: Keystore | None = None,
        *,
        clock: Clock = time.time,
        prekey_target: int = PREKEY_BATCH,
        prekey_threshold: int = 20,
        reconnect_attempts: int = 8,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        send_timeout: float = 30.0,
        device_cache_seconds: float = 60.0,
    ) -> None:
        """Wrap a device state; use :meth:`enrol` or :meth:`load` instead.

        Args:
            state: The device state.
            keystore: Where to save it after each change (``None``: memory only).
            clock: Time source (seconds).
            prekey_target: One-time prekeys to keep published.
            prekey_threshold: Replenish when the server holds fewer than this.
            reconnect_attempts: Failed reconnects in a row before giving up.
            backoff_initial: First reconnect delay, doubled each attempt.
            backoff_max: Largest reconnect delay.
            send_timeout: Seconds a send waits for its ``sent`` frame.
            device_cache_seconds: How long a person's device list is reused (listing
                consumes nothing; a device enrolled meanwhile is missed that long).
        """
        self.state = state
        self.keystore = keystore
        self.clock = clock
        self.prekey_target = prekey_target
        self.prekey_threshold = prekey_threshold
        self.reconnect_attempts = reconnect_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.send_timeout = send_timeout
        self.device_cache_seconds = device_cache_seconds
        self.failures: list[DecryptFailure] = []
        self.duplicates = 0
        """Redelivered envelopes dropped (already processed; at-least-once delivery)."""
        self.session_token = ""
        self._lock = asyncio.Lock()
        self._http_session: aiohttp.ClientSession | None = None
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._fatal: ClientError | None = None
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._waiters: dict[str, asyncio.Future[SentReceipt]] = {}
        self._syncs: dict[str, asyncio.Future[int]] = {}
        self._send_devices: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._devices = DeviceDirectory(
            state, lambda: (self.api, self.session_token), clock, device_cache_seconds
        )

    def __repr__(self) -> str:
        return f"<Client device={self.state.device_id} person={self.state.person_id}>"

    # --- creation -------------------------------------------------------------

    @classmethod
    async def enrol(
        cls,
        url: str,
        code: str,
        keystore_path: Path | None,
        passphrase: str = "",
        *,
        limits: KdfLimits = MODERATE,
        **options: Any,
    ) -> Client:
        """Generate device keys, enrol them with a one-time code, create the keystore.

        The keystore is written before the code is spent; if enrolment fails it is
        removed again.

        Args:
            url: Server URL (``http(s)://host[:port]``).
            code: The enrolment code.
            keystore_path: The new keystore file (``None``: keep keys in memory only).
            passphrase: Its passphrase.
            limits: Argon2id cost for the keystore.
            **options: Passed to the constructor.

        Returns:
            The client (not connected yet).

        Raises:
            ApiError: the server refused the code.
            KeystoreError: the keystore cannot be created.
            ClientError: the server is unreachable.
        """
        clock: Clock = options.get("clock", time.time)
        keys = DeviceKeys.generate(int(clock()), one_time_prekeys=PREKEY_BATCH)
        state = DeviceState(url.rstrip("/"), "", "", keys)
        keystore = None
        if keystore_path is not None:
            keystore = Keystore.create(keystore_path, passphrase, state.to_dict(), limits)
        try:
            async with aiohttp.ClientSession() as session:
                enrolled = await HttpApi(url, session).enrol(code, keys.identity.public)
        except BaseException:
            if keystore_path is not None:
                keystore_path.unlink(missing_ok=True)
            raise
        state.device_id, state.person_id = enrolled.device_id, enrolled.person_id
        client = cls(state, keystore, **options)
        client._save()
        return client

    @classmethod
    def load(cls, keystore_path: Path, passphrase: str, **options: Any) -> Client:
        """Unlock an existing keystore.

        Args:
            keystore_path: The keystore file.
            passphrase: Its passphrase.
            **options: Passed to the constructor.

        Returns:
            The client (not connected yet).

        Raises:
            WrongPassphrase: the passphrase does not open it.
            KeystoreError: missing, malformed, or never finished enrolling.
        """
        keystore, data = Keystore.open(keystore_path, passphrase)
        state = DeviceState.from_dict(data)
        if not state.device_id:
            raise ClientError(f"{keystore_path}: enrolment never completed; enrol again")
        return cls(state, keystore, **options)

    # --- properties -----------------------------------------------------------

    @property
    def device_id(self) -> str:
        """Our device id."""
        return self.state.device_id

    @property
    def person_id(self) -> str:
        """Our person id."""
        return self.state.person_id

    @property
    def api(self) -> HttpApi:
        """The REST API of our server (valid while connected)."""
        if self._http_session is None:
            raise ClientError("not connected")
        return HttpApi(self.state.server_url, self._http_session)

    # --- connection -----------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Log in, publish prekeys if needed, resend pending sends, start reading.

        Raises:
            ConnectionFailed: the server cannot be reached or refused the login.
            ApiError: the prekey upload was refused.
        """
        if self._reader is not None:
            return
        self._closing, self._fatal = False, None
        self._inbox = _without_end(self._inbox)
        self._events = _without_end(self._events)
        self._http_session = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self._http_session.close()
            self._http_session = None
            raise
        self._reader = asyncio.create_task(self._read_forever(), name=f"carnet-{self.device_id}")

    async def close(self) -> None:
        """Close the connection and stop reading; the keystore is already saved."""
        self._closing = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._connected.clear()
        if self._http_session is not None:
            await self._http_session.close()
            self._http_session = None
        self._fail_waiters(ConnectionFailed("client closed"))
        self._inbox.put_nowait(None)
        self._events.put_nowait(None)

    async def reconnect(self) -> None:
        """Drop the current connection (e.g. after a network change).

        The reader reconnects with backoff, catches up on what arrived meanwhile and
        resends unconfirmed sends.
        """
        ws = self._ws
        if ws is not None:
            self._connected.clear()
            await ws.close(code=1000, reason="client reconnects")

    async def _open(self) -> None:
        ws, ready = await open_connection(
            self.state.server_url, self.state.device_id, self.state.keys.identity
        )
        self._ws, self.session_token = ws, ready.session_token
        try:
            await self._maintain_prekeys(ready.prekeys_left)
            for text in list(self.state.pending.values()):
                await ws.send(text)
        except BaseException:
            await ws.close()
            raise
        self._connected.set()

    async def _read_forever(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None  # noqa: S101 - set by _open before this task starts
            try:
                async for raw in ws:
                    await self._on_frame(raw)
            except ConnectionClosed:
                pass
            except ClientError as exc:
                log.warning("client %s: stopping: %s", self.device_id, exc)
                await ws.close()
                self._stop(exc)
                return
            code = ws.close_code if ws.close_code is not None else 1006
            self._connected.clear()
            if self._closing:
                return
            if code not in RECONNECT_CODES:
                reason = "superseded by a newer connection" if code == 4001 else f"code {code}"
                self._stop(ConnectionFailed(f"connection closed for good ({reason})"))
                return
            if not await self._reconnect_with_backoff():
                return

    async def _reconnect_with_backoff(self) -> bool:
        delay = self.backoff_initial
        last: ClientError | None = None
        for _ in range(self.reconnect_attempts):
            await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
            try:
                await self._open()
                return True
            except ClientError as exc:
                last = exc
                log.info("client %s: reconnect failed: %s", self.device_id, exc)
            delay = min(delay * 2, self.backoff_max)
        self._stop(
            ConnectionFailed(f"gave up reconnecting after {self.reconnect_attempts}: {last}")
        )
        return False

    def _stop(self, error: ClientError) -> None:
        self._fatal = error
        self._fail_waiters(error)
        self._inbox.put_nowait(None)
        self._events.put_nowait(None)

    def _fail_waiters(self, error: ClientError) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        for synced in self._syncs.values():
            if not synced.done():
                synced.set_exception(error)
        self._waiters.clear()
        self._syncs.clear()

    # --- keys -----------------------------------------------------------------

    async def _maintain_prekeys(self, server_holds: int) -> None:
        """Publish the signed prekey and top up one-time prekeys (X3DH §3.2)."""
        async with self._lock:
            keys, now = self.state.keys, int(self.clock())
            signed: dict[str, object] | None = None
            upload: list[dict[str, object]] = []
            if not self.state.prekeys_published:
                signed = _signed_dict(keys)
                upload = [_otpk_dict(k) for k in keys.one_time_prekeys][: self.prekey_target]
            else:
                if now - keys.signed_prekey.created_at > SIGNED_PREKEY_LIFETIME:
                    keys = keys.with_rotated_signed_prekey(now)
                    signed = _signed_dict(keys)
                if server_holds < self.prekey_threshold:
                    first = keys.next_prekey_id
                    keys = keys.with_new_one_time_prekeys(self.prekey_target - server_holds)
                    upload = [_otpk_dict(k) for k in keys.one_time_prekeys if k.key_id >= first]
            if signed is None and not upload:
                return
            self.state.keys = keys
            self._save()
            for start in range(0, max(len(upload), 1), PREKEY_BATCH):
                await self.api.put_prekeys(
                    self.session_token, signed, upload[start : start + PREKEY_BATCH]
                )
                signed = None
            self.state.prekeys_published = True
            self._save()

    def _save(self) -> None:
        if self.keystore is not None:
            self.keystore.save(self.state.to_dict())

    # --- directory and devices ------------------------------------------------

    async def directory(self) -> list[Person]:
        """The people of our school.

        Returns:
            The directory.

        Raises:
            ApiError: refused.
            ClientError: not connected or unreachable.
        """
        return await self.api.directory(self.session_token)

    async def contact(self, person_id: str, refresh: bool = False) -> Contact:
        """A person's devices (cached for ``device_cache_seconds``; consumes no prekey).

        Check :attr:`Contact.has_email_bridge` and warn the user when it is true.

        Args:
            person_id: The person.
            refresh: Ignore the cache.

        Returns:
            The contact (device bundles are not included).

        Raises:
            ApiError: refused (``not_found``).
            ClientError: not connected or unreachable.
        """
        return await self._devices.contact(person_id, refresh)

    # --- conversations ----------------------------------------------------------

    async def direct(self, person_id: str) -> ConversationHandle:
        """The direct conversation with a person, created on first use.

        Its id is :func:`client.content.direct_conversation_id` of both person ids.

        Args:
            person_id: The other person.

        Returns:
            The conversation.

        Raises:
            ApiError: ``not_found`` (no such person in our school), ``not_allowed``.
            ClientError: not connected or unreachable.
        """
        for info in self.state.conversations.values():
            if info.kind == DIRECT and set(info.members) == {self.person_id, person_id}:
                return ConversationHandle(self, info)
        return await self._create(DIRECT, [person_id])

    async def create_group(
        self,
        member_person_ids: Sequence[str],
        title: str = "",
        *,
        kind: str = "group",
        class_id: str | None = None,
        acknowledge: bool = False,
    ) -> ConversationHandle:
        """Create a group conversation (we are its owner and a member).

        Args:
            member_person_ids: The other members.
            title: Its title.
            kind: ``group``, ``class`` (school staff; members from ``class_id``) or
                ``announcement`` (one-way: only owners write).
            class_id: For a class channel, the class.
            acknowledge: For an announcement, whether guardians acknowledge it.

        Returns:
            The conversation.

        Raises:
            ApiError: ``not_found``, ``not_allowed``, ``invalid_request``.
            ClientError: not connected or unreachable.
        """
        return await self._create(kind, member_person_ids, title, class_id, acknowledge)

    async def _create(
        self,
        kind: str,
        members: Sequence[str],
        title: str = "",
        class_id: str | None = None,
        acknowledge: bool = False,
    ) -> ConversationHandle:
        info = await self.api.create_conversation(
            self.session_token, kind, members, title, class_id, acknowledge
        )
        self._remember(info)
        return ConversationHandle(self, info)

    async def conversation(self, conversation_id: str) -> ConversationHandle:
        """A conversation we are a member of, fetched from the server.

        Args:
            conversation_id: The conversation.

        Returns:
            The conversation.

        Raises:
            ApiError: ``unknown_conversation``.
            ClientError: not connected or unreachable.
        """
        info = await self.api.conversation(self.session_token, conversation_id)
        self._remember(info)
        return ConversationHandle(self, info)

    async def conversations(self) -> list[ConversationInfo]:
        """Our conversations, with this device's acknowledged seq and unread count.

        Returns:
            The conversations.

        Raises:
            ApiError: refused.
            ClientError: not connected or unreachable.
        """
        listed = await self.api.conversations(self.session_token)
        async with self._lock:
            for info in listed:
                self.state.conversations[info.id] = info
            self._save()
        return listed

    async def add_member(self, conversation_id: str, person_id: str) -> ConversationInfo:
        """Add a member (owners only); our sender key rotates before the next send.

        Args:
            conversation_id: The conversation.
            person_id: The new member.

        Returns:
            The conversation after the change.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: not connected or unreachable.
        """
        info = await self.api.add_member(self.session_token, conversation_id, person_id)
        self._remember(info, rotate=True)
        return info

    async def remove_member(self, conversation_id: str, person_id: str) -> None:
        """Remove a member (owners only); our sender key rotates before the next send,
        so the removed person's devices cannot read what follows.

        Args:
            conversation_id: The conversation.
            person_id: Who goes.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: not connected or unreachable.
        """
        await self.api.remove_member(self.session_token, conversation_id, person_id)
        async with self._lock:
            info = self.state.conversations.get(conversation_id)
            if info is not None:
                members = tuple(m for m in info.members if m != person_id)
                self.state.conversations[conversation_id] = info.with_members(members, 0)
            self.state.groups.rotate(conversation_id)
            self._save()

    async def leave(self, conversation_id: str) -> None:
        """Leave a conversation; its keys are forgotten on this device.

        Args:
            conversation_id: The conversation.

        Raises:
            ApiError: ``not_allowed`` (direct conversations), ``unknown_conversation``.
            ClientError: not connected or unreachable.
        """
        await self.api.remove_member(self.session_token, conversation_id, self.person_id)
        async with self._lock:
            self.state.conversations.pop(conversation_id, None)
            self.state.groups.forget(conversation_id)
            self._save()

    def _remember(self, info: ConversationInfo, rotate: bool = False) -> None:
        self.state.conversations[info.id] = info
        if rotate:
            self.state.groups.rotate(info.id)
        self._save()

    async def _info(self, conversation_id: str, refresh: bool) -> ConversationInfo:
        info = self.state.conversations.get(conversation_id)
        if info is None or refresh:
            try:
                info = await self.api.conversation(self.session_token, conversation_id)
            except ApiError as exc:
                if exc.code == "unknown_conversation":
                    raise SendRefused(exc.code, exc.message) from None
                raise
            self.state.conversations[info.id] = info
        return info

    # --- sending ----------------------------------------------------------------

    async def send(self, conversation_id: str, text: str) -> SentReceipt:
        """Send a text to every device of every member of a conversation.

        Direct conversations are encrypted pairwise per device; the other kinds
        with our sender key (distributed first when new). Our other devices get a
        copy. A send refused because the membership or a device list changed
        meanwhile (``not_a_member``, ``unknown_device``) is rebuilt once from fresh
        lists.

        Args:
            conversation_id: The conversation.
            text: The message.

        Returns:
            The server's receipt (seq, franking stamp, devices encrypted for).

        Raises:
            NoDevices: no other member has a device with published keys.
            SendRefused: the server refused the send (e.g. ``not_allowed`` in an
                announcement we do not own, ``unknown_conversation`` when we are
                not, or no longer, a member).
            ApiError: the conversation or a device list could not be fetched.
            ConnectionFailed: the client is closed or gave up reconnecting.
            TimeoutError: no ``sent`` within ``send_timeout``.
        """
        for attempt in range(2):
            try:
                return await self._send_once(conversation_id, text, refresh=attempt > 0)
            except SendRefused as exc:
                if attempt or exc.code not in RETRY_CODES:
                    raise
                self._devices.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_to_person(self, person_id: str, text: str) -> SentReceipt:
        """Send a direct message (through the direct conversation, created if needed).

        Args:
            person_id: The addressee.
            text: The message.

        Returns:
            The server's receipt.

        Raises:
            NoDevices: the person has no device with published keys.
            SendRefused: the server refused the send.
            ApiError: the conversation could not be created.
            ConnectionFailed: the client is closed or gave up reconnecting.
            TimeoutError: no ``sent`` within ``send_timeout``.
        """
        conversation = await self.direct(person_id)
        return await self.send(conversation.id, text)

    async def _send_once(self, conversation_id: str, text: str, refresh: bool) -> SentReceipt:
        async with self._lock:
            info = await self._info(conversation_id, refresh)
            reach = await self._devices.reachable(info.members)
            if not reach.of_others(self.person_id):
                raise NoDevices(f"nobody else in {conversation_id} has a device with keys yet")
            devices = list(reach.devices)
            frames = build_send(self.state, info, devices, text, _new_id())
            futures = [self._queue_send(f, tuple(devices), reach.bridge) for f in frames]
            self._save()
        return await self._transmit(frames, futures)

    def _queue_send(
        self, frame: SendFrame, devices: tuple[str, ...], bridge: bool
    ) -> asyncio.Future[SentReceipt]:
        if self._fatal is not None:
            raise self._fatal
        self.state.pending[frame.client_msg_id] = dump_frame(frame)
        self._send_devices[frame.client_msg_id] = (devices, bridge)
        future: asyncio.Future[SentReceipt] = asyncio.get_running_loop().create_future()
        self._waiters[frame.client_msg_id] = future
        return future

    async def _transmit(
        self, frames: list[SendFrame], futures: list[asyncio.Future[SentReceipt]]
    ) -> SentReceipt:
        """Send frames in order once connected and wait for their ``sent`` frames.

        A frame that may not have left (connection down or dropped while sending) is
        resent by :meth:`_open` after the reconnect; a duplicate is harmless, the
        server stores a client message id once.
        """
        try:
            async with asyncio.timeout(self.send_timeout):
                for frame in frames:
                    if self._fatal is not None:
                        raise self._fatal
                    await self._connected.wait()
                    ws = self._ws
                    if ws is not None and frame.client_msg_id in self.state.pending:
                        try:
                            await ws.send(dump_frame(frame))
                        except ConnectionClosed:
                            pass
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        receipt = outcomes[-1]
        assert isinstance(receipt, SentReceipt)  # noqa: S101 - gather of receipts
        return receipt

    # --- receiving --------------------------------------------------------------

    async def messages(self) -> AsyncIterator[Message]:
        """Decrypted messages, in seq order per conversation, each exactly once.

        Ends when the client is closed.

        Yields:
            Each message.

        Raises:
            ConnectionFailed: the client gave up reconnecting or was superseded.
        """
        async for message in self._drain(self._inbox):
            yield message

    async def events(self) -> AsyncIterator[Event]:
        """Membership changes and expired-message notices, in arrival order.

        Ends when the client is closed.

        Yields:
            Each event.

        Raises:
            ConnectionFailed: the client gave up reconnecting or was superseded.
        """
        async for event in self._drain(self._events):
            yield event

    async def _drain(self, queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
        """Items of ``queue`` until the ``None`` that closing puts there; then the
        fatal error, if the client stopped on one."""
        while True:
            item = await queue.get()
            if item is None:
                if self._fatal is not None:
                    raise self._fatal
                return
            yield item

    @property
    def queued(self) -> int:
        """Messages received and decrypted but not yet taken by the application."""
        return self._inbox.qsize() - (1 if self._closing or self._fatal is not None else 0)

    async def next_message(self, timeout: float = 10.0) -> Message:
        """Wait for the next message.

        Args:
            timeout: Seconds to wait.

        Returns:
            The message.

        Raises:
            TimeoutError: nothing arrived in time.
            ConnectionFailed: the client stopped.
        """
        return await _next(self._inbox, timeout, self._fatal)

    async def next_event(self, timeout: float = 10.0) -> Event:
        """Wait for the next event (membership change or expired messages).

        Args:
            timeout: Seconds to wait.

        Returns:
            The event.

        Raises:
            TimeoutError: nothing arrived in time.
            ConnectionFailed: the client stopped.
        """
        return await _next(self._events, timeout, self._fatal)

    async def sync(self, conversation_id: str, since: int | None = None) -> int:
        """Ask the server again for what this device has not acknowledged.

        What comes back goes through the usual path (duplicates are dropped).

        Args:
            conversation_id: The conversation.
            since: Resend after this seq (default: the last seq processed here).

        Returns:
            The conversation's head seq when the answer ended.

        Raises:
            ConnectionFailed: not connected.
            TimeoutError: no ``synced`` within ``send_timeout``.
        """
        ws = self._ws
        if ws is None or not self._connected.is_set():
            raise ConnectionFailed("not connected")
        after = self.state.received.get(conversation_id, 0) if since is None else since
        future = self._syncs.get(conversation_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._syncs[conversation_id] = future
        try:
            await ws.send(dump_frame(SyncFrame(conversation=conversation_id, since=after)))
        except ConnectionClosed:
            raise ConnectionFailed("connection lost during sync") from None
        try:
            async with asyncio.timeout(self.send_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            if self._syncs.get(conversation_id) is future:
                del self._syncs[conversation_id]
            future.cancel()
            raise

    async def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = parse_server_frame(raw)
        except ProtocolError as exc:
            log.warning("client %s: unparseable frame: %s", self.device_id, exc.message)
            return
        if isinstance(frame, DeliverFrame):
            async with self._lock:
                await self._on_deliver(frame)
        elif isinstance(frame, EventFrame):
            async with self._lock:
                await self._on_event(frame)
        elif isinstance(frame, SentFrame):
            self._on_sent(frame)
        elif isinstance(frame, ErrorFrame):
            self._on_error(frame)
        elif isinstance(frame, SyncedFrame):
            future = self._syncs.pop(frame.conversation, None)
            if future is not None and not future.done():
                future.set_result(frame.head)
        elif isinstance(frame, ExpiredFrame):
            self._notify(ExpiredMessages(frame.conversation, frame.from_seq, frame.to_seq))
        elif isinstance(frame, PrekeysLowFrame):
            try:
                await self._maintain_prekeys(frame.remaining)
            except ApiError as exc:
                log.warning("client %s: prekey upload refused: %s", self.device_id, exc)

    def _on_sent(self, frame: SentFrame) -> None:
        ref = frame.client_msg_id
        if self.state.pending.pop(ref, None) is not None:
            self._save()
        devices, bridge = self._send_devices.pop(ref, ((), False))
        future = self._waiters.pop(ref, None)
        if future is not None and not future.done():
            future.set_result(
                SentReceipt(
                    ref,
                    frame.message_id,
                    frame.conversation,
                    frame.seq,
                    frame.ts,
                    frame.stamp,
                    devices,
                    bridge,
                )
            )

    def _on_error(self, frame: ErrorFrame) -> None:
        log.warning("client %s: server error %s: %s", self.device_id, frame.code, frame.message)
        if frame.ref is None or frame.ref not in self.state.pending:
            return
        # The server refused this send for good (retrying the same frame gives the
        # same answer); forget it so it is not resent forever.
        del self.state.pending[frame.ref]
        self._send_devices.pop(frame.ref, None)
        self._save()
        future = self._waiters.pop(frame.ref, None)
        if future is not None and not future.done():
            future.set_exception(SendRefused(frame.code.value, frame.message))

    def _notify(self, event: Event) -> None:
        if self._events.qsize() >= MAX_EVENTS:
            dropped = self._events.get_nowait()
            log.warning("client %s: event queue full, dropped %r", self.device_id, dropped)
        self._events.put_nowait(event)

    async def _on_event(self, frame: EventFrame) -> None:
        if frame.envelope_id in self.state.seen:
            self.duplicates += 1
            await self._ack(frame.envelope_id)
            return
        change = apply_event(self.state, frame)
        self.state.mark_seen(frame.envelope_id, frame.conversation, frame.seq)
        self._save()
        await self._ack(frame.envelope_id)
        self._notify(change)

    async def _on_deliver(self, frame: DeliverFrame) -> None:
        if frame.envelope_id in self.state.seen:
            self.duplicates += 1
            await self._ack(frame.envelope_id)
            return
        message: Message | None = None
        try:
            opened = open_deliver(self.state, frame)
        except InvalidMessage:
            self.state.failures += 1
            self.failures.append(
                DecryptFailure(
                    frame.envelope_id, frame.sender_device, frame.sender_person, frame.ts
                )
            )
            log.info("client %s: undecryptable envelope %s", self.device_id, frame.envelope_id)
        else:
            if opened is not None:
                message = Message(
                    envelope_id=frame.envelope_id,
                    message_id=frame.message_id,
                    conversation=frame.conversation,
                    seq=frame.seq,
                    sender_person=frame.sender_person,
                    sender_device=frame.sender_device,
                    sender_kind=await self._kind_of(frame.sender_person, frame.sender_device),
                    from_me=frame.sender_person == self.person_id,
                    to_person=opened.content.to,
                    body=opened.content.text,
                    ts=frame.ts,
                    group=frame.group,
                    evidence=FrankingEvidence(
                        body=opened.body,
                        franking_key=opened.franking_key,
                        commitment=frame.commitment or b"",
                        stamp=frame.stamp,
                        sender_device=frame.sender_device,
                        conversation=frame.conversation,
                        timestamp_ms=frame.ts,
                    ),
                    ciphertext=frame.ciphertext,
                )
        self.state.mark_seen(frame.envelope_id, frame.conversation, frame.seq)
        self._save()
        await self._ack(frame.envelope_id)
        if message is not None:
            self._inbox.put_nowait(message)

    async def _kind_of(self, person_id: str, device_id: str) -> str:
        for refresh in (False, True):
            try:
                contact = await self.contact(person_id, refresh=refresh)
            except ClientError:
                return "unknown"
            for device in contact.devices:
                if device.device_id == device_id:
                    return device.kind
        return "unknown"

    async def _ack(self, envelope_id: str) -> None:
        """Acknowledge through this envelope's seq (cumulative per conversation)."""
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(dump_frame(AckFrame(envelope_ids=[envelope_id])))
        except ConnectionClosed:
            pass  # redelivered after the reconnect, then acknowledged as seen


async def _next(queue: asyncio.Queue[T | None], timeout: float, fatal: ClientError | None) -> T:
    async with asyncio.timeout(timeout):
        item = await queue.get()
    if item is None:
        queue.put_nowait(None)
        raise fatal or ConnectionFailed("client closed")
    return item


def _without_end(queue: asyncio.Queue[T]) -> asyncio.Queue[T]:
    """A new queue with what ``queue`` held, minus end markers (reconnect after close)."""
    kept: asyncio.Queue[T] = asyncio.Queue()
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None:
            kept.put_nowait(item)
    return kept


def _new_id() -> str:
    return secrets.token_urlsafe(12)


def _signed_dict(keys: DeviceKeys) -> dict[str, object]:
    spk = keys.signed_prekey
    return {
        "id": spk.key_id,
        "key": b64url_encode(spk.key_pair.public),
        "signature": b64url_encode(spk.signature),
    }


def _otpk_dict(key: OneTimePreKey) -> dict[str, object]:
    return {"id": key.key_id, "key": b64url_encode(key.key_pair.public)}
