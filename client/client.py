"""The asynchronous client: enrol, log in, keep keys published, send and receive.

Life cycle::

    client = await Client.enrol(url, code, path, passphrase)   # or Client.load(path, ...)
    async with client:                                          # connect, publish prekeys
        await client.send_to_person(person_id, "Bonjour")
        async for message in client.messages():
            ...

Tasks: one reader task per client, owned by it and cancelled by :meth:`Client.close`;
it reads frames, decrypts, acknowledges, and reconnects with exponential backoff
(bounded attempts) after 1001 (server going away), 4002 (slow reader) or a network
drop. 1008 (policy) and 4001 (superseded by a newer connection of this device) end
the client. All key material is changed under one lock and saved to the keystore
before anything leaves the client (a crash can lose a message, never a key).

Delivery (docs/sdk.md, "At least once"): each ``deliver`` is decrypted, the state
saved with its envelope id in ``seen``, the message queued for :meth:`messages`,
then acknowledged. A redelivered envelope id is acknowledged and dropped. An
undecryptable envelope is counted, recorded in :attr:`Client.failures` and
acknowledged. Sends are kept in the keystore until their ``sent`` frame arrives and
resent with the same client message id after a reconnect (idempotent on the server).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from client.content import (
    SenderKeyContent,
    TextContent,
    decode_body,
    direct_conversation_id,
    encode_body,
)
from client.errors import ApiError, ClientError, ConnectionFailed, NoDevices, SendRefused
from client.http import BRIDGE_KIND, Contact, HttpApi, Person
from client.keystore import MODERATE, KdfLimits, Keystore
from client.messages import DecryptFailure, FrankingEvidence, Message, SentReceipt
from client.state import DeviceState
from client.transport import open_connection
from crypto import DeviceKeys, InvalidMessage, frank, open_franked
from crypto.encoding import b64url_encode
from crypto.keys import OneTimePreKey
from protocol import (
    AckFrame,
    DeliverFrame,
    EnvelopeIn,
    ErrorFrame,
    GroupPayload,
    PrekeysLowFrame,
    ProtocolError,
    SendFrame,
    SentFrame,
    dump_frame,
    parse_server_frame,
)

__all__ = ["Client"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests inject their own."""

RECONNECT_CODES = frozenset({1000, 1001, 1006, 1011, 1012, 1013, 4002})
"""Close codes after which the client reconnects; others end it (1008, 4001, ...)."""
PREKEY_BATCH = 100
SIGNED_PREKEY_LIFETIME = 7 * 24 * 3600
MAX_WAITING_GROUP = 1000


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
        device_cache_seconds: float = 300.0,
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
            device_cache_seconds: How long a person's device list is reused (each
                listing consumes one-time prekeys of their devices).
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
        self.session_token = ""
        self._lock = asyncio.Lock()
        self._http_session: aiohttp.ClientSession | None = None
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._fatal: ClientError | None = None
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._waiters: dict[str, asyncio.Future[SentReceipt]] = {}
        self._send_devices: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._contacts: dict[str, tuple[float, Contact]] = {}
        self._waiting_group: dict[tuple[str, str], list[DeliverFrame]] = {}

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
        kept: asyncio.Queue[Message | None] = asyncio.Queue()
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            if message is not None:
                kept.put_nowait(message)
        self._inbox = kept
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
        self._waiting_group.clear()
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

    def _fail_waiters(self, error: ClientError) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()

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
        """A person's devices (cached for ``device_cache_seconds``).

        Check :attr:`Contact.has_email_bridge` and warn the user when it is true.

        Args:
            person_id: The person.
            refresh: Ignore the cache.

        Returns:
            The contact.

        Raises:
            ApiError: refused (``not_found``).
            ClientError: not connected or unreachable.
        """
        cached = self._contacts.get(person_id)
        if (
            not refresh
            and cached is not None
            and self.clock() - cached[0] < self.device_cache_seconds
        ):
            return cached[1]
        contact = await self.api.devices(self.session_token, person_id)
        self._contacts[person_id] = (self.clock(), contact)
        return contact

    async def _reachable_devices(self, person_ids: Iterable[str]) -> tuple[list[str], bool]:
        """Devices of these people we have (or can start) a session with; bridge flag."""
        devices: list[str] = []
        bridge = False
        for person_id in dict.fromkeys(person_ids):
            contact = await self.contact(person_id)
            for device in contact.devices:
                if device.device_id == self.device_id or device.device_id in devices:
                    continue
                book = self.state.book
                if not book.has_session(device.device_id):
                    if device.bundle is None:
                        continue
                    try:
                        book.pin(device.device_id, device.identity_key)
                        book.start(self.state.keys, device.device_id, device.bundle)
                    except InvalidMessage:
                        log.warning("device %s: bad bundle, skipped", device.device_id)
                        continue
                devices.append(device.device_id)
                bridge = bridge or device.kind == BRIDGE_KIND
        return devices, bridge

    # --- sending ----------------------------------------------------------------

    async def send_to_person(self, person_id: str, text: str) -> SentReceipt:
        """Send a direct message to every device of a person and our other devices.

        Args:
            person_id: The addressee.
            text: The message.

        Returns:
            The server's receipt (with the franking stamp).

        Raises:
            NoDevices: the person has no device with published keys.
            SendRefused: the server refused the send.
            ConnectionFailed: the client is closed or gave up reconnecting.
            TimeoutError: no ``sent`` within ``send_timeout``.
        """
        async with self._lock:
            theirs, bridge = await self._reachable_devices([person_id])
            if not theirs:
                raise NoDevices(f"{person_id} has no device with published keys yet")
            mine, _ = await self._reachable_devices([self.person_id])
            franked = frank(encode_body(TextContent(text, person_id)))
            targets = theirs + [d for d in mine if d not in theirs]
            envelopes = [
                EnvelopeIn(device_id=d, ciphertext=self.state.book.encrypt(d, franked.payload))
                for d in targets
            ]
            frame = SendFrame(
                client_msg_id=_new_id(),
                conversation=direct_conversation_id(self.person_id, person_id),
                envelopes=envelopes,
                commitment=franked.commitment,
            )
            future = self._queue_send(frame, tuple(targets), bridge)
            self._save()
        return await self._transmit([frame], [future])

    async def send_to_group(
        self, conversation_id: str, member_person_ids: Iterable[str], text: str
    ) -> SentReceipt:
        """Send one sender-key ciphertext to every device of the members.

        The first time, and whenever the member devices differ from those our
        sender key was given to, a new sender key is made and distributed over
        pairwise sessions first (rotation: removed devices cannot read what follows).

        Args:
            conversation_id: The conversation (``[A-Za-z0-9_-]{1,64}``).
            member_person_ids: Every member (ourselves included or not).
            text: The message.

        Returns:
            The receipt of the group message.

        Raises:
            NoDevices: no member device to send to.
            SendRefused: the server refused a send.
            ConnectionFailed: closed or gave up reconnecting.
            TimeoutError: no ``sent`` within ``send_timeout``.
        """
        async with self._lock:
            persons = [p for p in member_person_ids if p != self.person_id] + [self.person_id]
            devices, bridge = await self._reachable_devices(persons)
            if not devices:
                raise NoDevices("no member device with published keys")
            members = frozenset(devices)
            sender, new = self.state.groups.sender(conversation_id, members)
            frames: list[SendFrame] = []
            futures: list[asyncio.Future[SentReceipt]] = []
            base_id = _new_id()
            if new:
                content = SenderKeyContent(conversation_id, sender.distribution())
                franked_key = frank(encode_body(content))
                key_frame = SendFrame(
                    client_msg_id=base_id + ".k",
                    conversation=conversation_id,
                    envelopes=[
                        EnvelopeIn(
                            device_id=d,
                            ciphertext=self.state.book.encrypt(d, franked_key.payload),
                        )
                        for d in sorted(members)
                    ],
                    commitment=franked_key.commitment,
                )
                frames.append(key_frame)
                futures.append(self._queue_send(key_frame, tuple(sorted(members)), bridge))
            franked = frank(encode_body(TextContent(text)))
            frame = SendFrame(
                client_msg_id=base_id,
                conversation=conversation_id,
                group=GroupPayload(
                    ciphertext=sender.encrypt(franked.payload), device_ids=sorted(members)
                ),
                commitment=franked.commitment,
            )
            frames.append(frame)
            futures.append(self._queue_send(frame, tuple(sorted(members)), bridge))
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
            receipts = [await future for future in futures]
        return receipts[-1]

    # --- receiving --------------------------------------------------------------

    async def messages(self) -> AsyncIterator[Message]:
        """Decrypted messages, in arrival order, each exactly once.

        Ends when the client is closed.

        Yields:
            Each message.

        Raises:
            ConnectionFailed: the client gave up reconnecting or was superseded.
        """
        while True:
            message = await self._inbox.get()
            if message is None:
                if self._fatal is not None:
                    raise self._fatal
                return
            yield message

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
        async with asyncio.timeout(timeout):
            message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)
            raise self._fatal or ConnectionFailed("client closed")
        return message

    async def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = parse_server_frame(raw)
        except ProtocolError as exc:
            log.warning("client %s: unparseable frame: %s", self.device_id, exc.message)
            return
        if isinstance(frame, DeliverFrame):
            async with self._lock:
                await self._on_deliver(frame)
        elif isinstance(frame, SentFrame):
            self._on_sent(frame)
        elif isinstance(frame, ErrorFrame):
            self._on_error(frame)
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
                SentReceipt(ref, frame.message_id, frame.ts, frame.stamp, devices, bridge)
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
        if frame.code.value == "unknown_device":
            self._contacts.clear()
        future = self._waiters.pop(frame.ref, None)
        if future is not None and not future.done():
            future.set_exception(SendRefused(frame.code.value, frame.message))

    async def _on_deliver(self, frame: DeliverFrame) -> None:
        if frame.envelope_id in self.state.seen:
            await self._ack([frame.envelope_id])
            return
        try:
            message = await self._open_envelope(frame)
        except _NotYet:
            return
        except InvalidMessage:
            self.state.failures += 1
            self.failures.append(
                DecryptFailure(
                    frame.envelope_id, frame.sender_device, frame.sender_person, frame.ts
                )
            )
            log.info("client %s: undecryptable envelope %s", self.device_id, frame.envelope_id)
            message = None
        self.state.mark_seen(frame.envelope_id)
        self._save()
        if message is not None:
            self._inbox.put_nowait(message)
        await self._ack([frame.envelope_id])

    async def _open_envelope(self, frame: DeliverFrame) -> Message | None:
        """Decrypt one envelope; ``None`` for control content (sender keys)."""
        if frame.group:
            conversation = frame.conversation
            if conversation is None:
                raise InvalidMessage()
            waiting_key = (conversation, frame.sender_device)
            if not self.state.groups.knows_key(conversation, frame.sender_device, frame.ciphertext):
                waiting = self._waiting_group.setdefault(waiting_key, [])
                if len(waiting) < MAX_WAITING_GROUP and frame not in waiting:
                    waiting.append(frame)
                    raise _NotYet()  # its sender key distribution may still be on its way
                raise InvalidMessage()
            payload = self.state.groups.decrypt(conversation, frame.sender_device, frame.ciphertext)
        else:
            payload, keys = self.state.book.decrypt(
                self.state.keys, frame.sender_device, frame.ciphertext
            )
            self.state.keys = keys
        if frame.commitment is None:
            raise InvalidMessage()
        body, franking_key = open_franked(payload, frame.commitment)
        content = decode_body(body)
        if isinstance(content, SenderKeyContent):
            if frame.group:
                raise InvalidMessage()
            self.state.groups.add_distribution(
                content.conversation, frame.sender_device, content.distribution
            )
            await self._retry_waiting((content.conversation, frame.sender_device))
            return None
        return Message(
            envelope_id=frame.envelope_id,
            message_id=frame.message_id,
            sender_person=frame.sender_person,
            sender_device=frame.sender_device,
            sender_kind=await self._kind_of(frame.sender_person, frame.sender_device),
            from_me=frame.sender_person == self.person_id,
            conversation=frame.conversation,
            to_person=content.to,
            body=content.text,
            ts=frame.ts,
            group=frame.group,
            evidence=FrankingEvidence(
                body=body,
                franking_key=franking_key,
                commitment=frame.commitment,
                stamp=frame.stamp,
                sender_device=frame.sender_device,
                conversation=frame.conversation or "",
                timestamp_ms=frame.ts,
            ),
            ciphertext=frame.ciphertext,
        )

    async def _retry_waiting(self, key: tuple[str, str]) -> None:
        for waiting in self._waiting_group.pop(key, []):
            await self._on_deliver(waiting)

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

    async def _ack(self, envelope_ids: list[str]) -> None:
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(dump_frame(AckFrame(envelope_ids=envelope_ids)))
        except ConnectionClosed:
            pass  # redelivered after the reconnect, then acknowledged as seen


class _NotYet(Exception):
    """A group message whose sender key has not arrived: keep it unacknowledged."""


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
