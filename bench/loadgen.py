"""Load-generator worker processes: each drives a share of the scenario's devices.

A worker is a separate process (``multiprocessing``, spawn) running one asyncio
loop with one aiohttp client session. The orchestrator (:mod:`bench.scenarios`)
sends it commands over a pipe and waits for each answer, so that it can read
the server's CPU counters exactly around each phase:

=========== ===============================================================
``connect`` log every device of the worker in (challenge → auth → ready)
``drop``    close every socket
``direct``  each device sends 1:1 on its first route (bounded window, optional
            rate), then waits for the outstanding deliveries
``fanout``  each device with routes sends ``count`` messages on every route
            (one group ciphertext, or one pairwise envelope)
``wait``    wait until every device received ``expected`` messages
``reset``   return the counters and start new ones
``quit``    close everything and exit
=========== ===============================================================

A device's routes (:mod:`bench.layout`) name a conversation and its target
devices. Every ``deliver`` and ``event`` is acknowledged cumulatively: the
highest seq per conversation, batched per socket write (docs/protocol.md,
"Delivery").

Every loop is bounded in count and in time; a watchdog ends the process at
its hard deadline whatever happens (the orchestrator may have died).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from bench.wire import (
    BenchError,
    Credentials,
    ack_frame,
    b64d,
    b64e,
    latency_ms,
    login,
    send_frame,
    stamp_ns,
)
from bench.wire import stamped as stamped_payload
from protocol import acknowledgement_message

POLL_SECONDS = 0.02
LOGIN_CONCURRENCY = 100
MAX_ACK_IDS = 1000
"""At most this many envelope ids per ``ack`` frame (protocol.frames.MAX_ACK_IDS)."""


@dataclass
class Stats:
    sent: int = 0
    stored: int = 0
    deliveries: int = 0
    duplicates: int = 0
    refused: int = 0
    """Sends answered with an ``error`` (``ref`` set) instead of ``sent``."""
    events: int = 0
    """Sequenced membership events received (acknowledged, not counted as messages)."""
    receipts: int = 0
    """``receipt`` frames received (delivered/read receipts of other members)."""
    acknowledged: int = 0
    """Announcements acknowledged by a guardian's signature (``POST .../acknowledgements``)."""
    messages: set[str] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)
    """When each of ``latencies_ms``'s messages was sent (``CLOCK_MONOTONIC``)."""
    errors: Counter[str] = field(default_factory=Counter)
    last_delivery: float = 0.0
    stale: int = 0
    """Deliveries of messages sent before these counters started (an earlier phase)."""
    since_ns: int = field(default_factory=time.monotonic_ns)

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "stored": self.stored,
            "deliveries": self.deliveries,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "events": self.events,
            "receipts": self.receipts,
            "acknowledged": self.acknowledged,
            "messages": len(self.messages),
            "latencies_ms": self.latencies_ms,
            "stamps_ns": self.stamps_ns,
            "errors": dict(self.errors),
            "last_delivery": self.last_delivery,
            "stale": self.stale,
        }


class Device:
    """One device's socket, reader and acker inside a worker."""

    def __init__(
        self,
        creds: Credentials,
        routes: list[dict[str, Any]],
        worker: Worker,
        acknowledge: bool = False,
    ) -> None:
        self.creds = creds
        self.routes = routes
        self.acknowledge = acknowledge
        """Sign an acknowledgement of every announcement delivered (a guardian)."""
        self.session_token = ""
        self.worker = worker
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.received = 0
        self.seen: set[str] = set()
        self.window = asyncio.Semaphore(1)
        self.acks: dict[str, int] = {}
        """Highest seq received per conversation, not yet acknowledged."""
        self.ack_wanted = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.outgoing: Any = None  # crypto.Session to the peer (--with-crypto)
        self.incoming: Any = None  # crypto.Session from the peer

    @property
    def peer(self) -> str | None:
        """The one target of a 1:1 first route, if any."""
        if self.routes and not self.routes[0]["group"] and len(self.routes[0]["to"]) == 1:
            peer: str = self.routes[0]["to"][0]
            return peer
        return None

    async def connect(self) -> None:
        ws, ready = await login(self.worker.http, self.worker.ws_url, self.creds)
        self.ws, self.session_token = ws, ready.get("session_token", "")
        self.tasks = [
            asyncio.create_task(self._reader(ws)),
            asyncio.create_task(self._acker(ws)),
        ]

    async def drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            await ws.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        self.acks = {}

    async def _reader(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:  # ends when the socket closes (bounded by the watchdog)
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            stats = self.worker.stats  # the current phase's counters (reset replaces them)
            frame = json.loads(msg.data)
            kind = frame.get("type")
            if kind == "sent":
                stats.stored += 1
                self.window.release()
            elif kind == "deliver":
                self._on_deliver(frame)
            elif kind == "event":
                stats.events += 1
                self._ack_later(frame["conversation"], frame["seq"])
            elif kind == "receipt":
                stats.receipts += 1
            elif kind == "error":
                stats.errors[frame.get("code", "error")] += 1
                if frame.get("ref"):
                    stats.refused += 1
                    self.window.release()
        if ws.close_code not in (None, 1000) and self.ws is ws:
            self.worker.stats.errors[f"close_{ws.close_code}"] += 1

    def _ack_later(self, conversation: str, seq: int) -> None:
        if seq > self.acks.get(conversation, 0):
            self.acks[conversation] = seq
        self.ack_wanted.set()

    def _on_deliver(self, frame: dict[str, Any]) -> None:
        stats = self.worker.stats
        envelope_id = frame["envelope_id"]
        self._ack_later(frame["conversation"], frame["seq"])
        if envelope_id in self.seen:
            stats.duplicates += 1
            return
        self.seen.add(envelope_id)
        payload = b64d(frame["ciphertext"])
        if self.incoming is not None and not frame.get("group"):
            payload = self.incoming.decrypt(payload)
        if stamp_ns(payload) < stats.since_ns:
            stats.stale += 1
            return
        if self.acknowledge:
            self.worker.background(self._acknowledge(frame))
        self.received += 1
        stats.deliveries += 1
        stats.messages.add(frame["message_id"])
        stats.last_delivery = time.monotonic()
        stats.latencies_ms.append(latency_ms(payload))
        stats.stamps_ns.append(stamp_ns(payload))

    async def _acknowledge(self, frame: dict[str, Any]) -> None:
        """``POST /v1/conversations/{id}/acknowledgements``: the guardian's signature."""
        conversation, seq = frame["conversation"], frame["seq"]
        signed = acknowledgement_message(
            conversation, seq, frame["message_id"], self.creds.person_id
        )
        signature = SigningKey(self.creds.seed).sign(signed).signature
        url = self.worker.ws_url.replace("ws://", "http://").removesuffix("/v1/ws")
        headers = {"Authorization": f"Bearer {self.session_token}"}
        body = {"seq": seq, "signature": b64e(signature)}
        try:
            async with self.worker.http.post(
                f"{url}/v1/conversations/{conversation}/acknowledgements",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                if response.status in (200, 201):
                    self.worker.stats.acknowledged += 1
                else:
                    self.worker.stats.errors[f"acknowledge_{response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.worker.stats.errors["acknowledge_failed"] += 1

    async def _acker(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:  # bounded by the socket's life
            await self.ack_wanted.wait()
            self.ack_wanted.clear()
            while self.acks and not ws.closed:
                batch = dict(list(self.acks.items())[:MAX_ACK_IDS])
                for conversation in batch:
                    del self.acks[conversation]
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(ack_frame(batch))

    async def send(self, text: str) -> None:
        if self.ws is None or self.ws.closed:
            raise BenchError("not connected")
        await self.ws.send_str(text)
        self.worker.stats.sent += 1


class Worker:
    """The devices of one process and the commands the orchestrator gives them."""

    def __init__(self, spec: dict[str, Any], http: aiohttp.ClientSession) -> None:
        self.ws_url: str = spec["ws_url"]
        self.http = http
        self.stats = Stats()
        self.devices = [
            Device(
                Credentials.from_json(d["creds"]),
                d.get("routes", []),
                self,
                d.get("acknowledge", False),
            )
            for d in spec["devices"]
        ]
        self._background: set[asyncio.Task[None]] = set()
        self.by_id = {d.creds.device_id: d for d in self.devices}

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the readers (kept referenced until done)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def connect(self, args: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(args.get("concurrency", LOGIN_CONCURRENCY))
        errors: Counter[str] = Counter()

        async def one(device: Device) -> None:
            async with gate:
                try:
                    await device.connect()
                except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1

        started = time.monotonic()
        await asyncio.gather(*(one(d) for d in self.devices if d.ws is None))
        self.stats.errors.update({f"login_{k}": v for k, v in errors.items()})
        connected = sum(1 for d in self.devices if d.ws is not None)
        return {"connected": connected, "seconds": time.monotonic() - started}

    async def drop(self, args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.gather(*(d.drop() for d in self.devices))
        return {}

    def reset(self, args: dict[str, Any]) -> dict[str, Any]:
        old, self.stats = self.stats, Stats()
        for device in self.devices:
            device.received = 0
        return old.to_json()

    async def direct(self, args: dict[str, Any]) -> dict[str, Any]:
        senders = [d for d in self.devices if d.peer is not None and d.ws is not None]
        if args.get("crypto"):
            establish_sessions(senders, self.by_id)
        tag = uuid.uuid4().hex[:8]
        started = time.monotonic()
        deadline = started + args["duration"]
        await asyncio.gather(*(self._send_direct(d, tag, deadline, args) for d in senders))
        await self._drain(deadline + args["grace"])
        return {**self.stats.to_json(), "started": started}

    async def _send_direct(
        self, device: Device, tag: str, deadline: float, args: dict[str, Any]
    ) -> None:
        route = device.routes[0]
        peer = route["to"][0]
        device.window = asyncio.Semaphore(args["window"])
        interval = args.get("interval") or 0.0
        next_at = time.monotonic() + random.uniform(0, interval)  # senders out of step
        size = args["size"]
        for n in range(args["max_messages"]):
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, min(next_at - time.monotonic(), deadline)))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(device.window.acquire(), remaining)
            except TimeoutError:
                break
            payload = stamped_payload(size, n)
            if device.outgoing is not None:
                payload = device.outgoing.encrypt(payload[:8] + payload[8 : size - 120])
            text = send_frame(f"{tag}.{n}", route["conversation"], pairwise={peer: payload})
            try:
                await device.send(text)
            except (BenchError, ConnectionResetError):
                self.stats.errors["send_failed"] += 1
                break

    async def _drain(self, until: float) -> None:
        """Wait (bounded) until every send of this worker was answered and every
        stored 1:1 message delivered, so that nothing spills into the next phase."""
        stats = self.stats
        while time.monotonic() < until and (
            stats.stored + stats.refused < stats.sent or stats.deliveries < stats.stored
        ):
            await asyncio.sleep(POLL_SECONDS)

    async def fanout(self, args: dict[str, Any]) -> dict[str, Any]:
        senders = [d for d in self.devices if d.routes and d.ws is not None]
        started = time.monotonic()
        deadline = started + args["duration"]
        await asyncio.gather(*(self._send_fanout(d, deadline, args) for d in senders))
        until = time.monotonic() + args["grace"]
        while time.monotonic() < until and self.stats.stored + self.stats.refused < self.stats.sent:
            await asyncio.sleep(POLL_SECONDS)
        return {**self.stats.to_json(), "started": started}

    async def _send_fanout(self, sender: Device, deadline: float, args: dict[str, Any]) -> None:
        """``count`` messages on every route of ``sender`` (group or pairwise)."""
        sender.window = asyncio.Semaphore(args["window"])
        tag = uuid.uuid4().hex[:8]
        interval = args.get("interval") or 0.0
        for n in range(args["count"]):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for r, route in enumerate(sender.routes):
                try:
                    await asyncio.wait_for(sender.window.acquire(), remaining)
                except TimeoutError:
                    return
                payload = stamped_payload(args["size"], n)
                targets: list[str] = route["to"]
                if route["group"]:
                    group = (payload, targets)
                    text = send_frame(f"{tag}.{n}.{r}", route["conversation"], group=group)
                else:
                    pairwise = {targets[0]: payload}
                    text = send_frame(f"{tag}.{n}.{r}", route["conversation"], pairwise=pairwise)
                try:
                    await sender.send(text)
                except (BenchError, ConnectionResetError):
                    self.stats.errors["send_failed"] += 1
                    return
            if interval:
                await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def wait(self, args: dict[str, Any]) -> dict[str, Any]:
        expected = args["expected"]
        started = time.monotonic()
        until = started + args["timeout"]
        while time.monotonic() < until and any(d.received < expected for d in self.devices):
            await asyncio.sleep(POLL_SECONDS)
        while time.monotonic() < until and self._background:  # acknowledgements in flight
            await asyncio.sleep(POLL_SECONDS)
        done = sum(1 for d in self.devices if d.received >= expected)
        return {"complete": done, "seconds": time.monotonic() - started}


def establish_sessions(senders: list[Device], by_id: dict[str, Device]) -> None:
    """Pre-establish a Double Ratchet session per direction (X3DH done locally)."""
    from crypto import DeviceKeys, accept_session, initiate_session

    now = int(time.time())
    for device in senders:
        peer = by_id.get(device.peer or "")
        if peer is None or device.outgoing is not None:
            continue
        theirs = DeviceKeys.generate(now, one_time_prekeys=1)
        session = initiate_session(DeviceKeys.generate(now, one_time_prekeys=1), theirs.bundle(1))
        accepted = accept_session(theirs, session.encrypt(b"hello"))
        session.decrypt(accepted.session.encrypt(b"hello"))
        device.outgoing, peer.incoming = session, accepted.session


async def _serve(conn: Connection, spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        worker = Worker(spec, http)
        commands = {
            "connect": worker.connect,
            "drop": worker.drop,
            "direct": worker.direct,
            "fanout": worker.fanout,
            "wait": worker.wait,
        }
        for _ in range(10_000):  # commands of one run; bounded
            name, args = await loop.run_in_executor(None, conn.recv)
            if name == "quit":
                await worker.drop({})
                conn.send({})
                return
            if name == "reset":
                conn.send(worker.reset(args))
                continue
            conn.send(await commands[name](args))


def worker_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Process entry point: serve commands until ``quit`` or the hard deadline."""
    hard_deadline = spec["hard_seconds"]

    async def main() -> None:
        task = asyncio.create_task(_serve(conn, spec))
        try:
            await asyncio.wait_for(task, hard_deadline)
        except TimeoutError:
            os._exit(3)

    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    asyncio.run(main())
