"""The scenarios (issue 9): each against Carnet and, where it means something, the relay.

Every scenario returns one dict per run with the same keys, so runs can be
compared side by side and their medians taken (:mod:`bench.report`). CPU is
read from ``/proc`` around each measured phase: the server process alone, and
the database child apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import server_metrics
from bench.dbwrites import READS, WRITES, WriteCounter
from bench.pool import Pool, merge
from bench.procstat import CpuMeter, sample
from bench.servers import ServerProcess

Entry = dict[str, Any]

SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class Params:
    """Knobs of a run (command-line flags of ``python -m bench run``)."""

    duration: float = 10.0
    window: int = 8
    size: int = 256
    workers: int = 2
    pairs: int = 50
    members: int = 100
    families: int = 300
    connections: int = 1000
    messages: int = 5
    with_crypto: bool = False
    receipts: bool = True
    """False: the bench schools turn delivered and read receipts off (school settings)."""
    catch_up_timeout: float = 120.0
    """reconnect/offline: how long to wait for every device to catch up."""
    grace: float = 30.0
    hard_seconds: float = 1800.0


def _meter(server: ServerProcess) -> CpuMeter:
    return CpuMeter({"server": server.pid, "database": server.database_pid})


def _figures(totals: dict[str, Any], seconds: float, meter: CpuMeter) -> dict[str, Any]:
    """The per-run figures every scenario reports."""
    deliveries = totals["deliveries"]
    seconds = max(seconds, 1e-6)
    out = {
        **{
            k: totals.get(k, 0)
            for k in ("sent", "stored", "refused", "deliveries", "duplicates", "messages")
        },
        "events": totals.get("events", 0),
        "receipts": totals.get("receipts", 0),
        "acknowledged": totals.get("acknowledged", 0),
        "seconds": round(seconds, 3),
        "messages_per_s": round(totals["messages"] / seconds, 1),
        "deliveries_per_s": round(deliveries / seconds, 1),
        "latency_ms": totals["latency_ms"],
        "errors": totals["errors"],
        "server_cpu_s": round(meter.cpu["server"], 3),
        "server_cpu_us_per_delivery": round(meter.cpu["server"] / deliveries * 1e6, 1)
        if deliveries
        else None,
        "server_rss_mib": round(meter.rss["server"] / 2**20, 1),
    }
    if "slow_tenths" in totals:
        out["slow_tenths"] = totals["slow_tenths"]
    if "database" in meter.cpu:
        out["database_cpu_s"] = round(meter.cpu["database"], 3)
        out["database_cpu_us_per_delivery"] = (
            round(meter.cpu["database"] / deliveries * 1e6, 1) if deliveries else None
        )
        out["database_rss_mib"] = round(meter.rss["database"] / 2**20, 1)
    return out


def _writes(counter: WriteCounter | None, messages: int, deliveries: int) -> dict[str, Any]:
    """Database documents written (inserts + updates + deletes) per message and delivery."""
    if counter is None or counter.delta is None:
        return {}
    written = sum(n for k, n in counter.delta.items() if k in WRITES)
    read = sum(n for k, n in counter.delta.items() if k in READS)
    return {
        "db_writes": counter.delta,
        "db_writes_per_message": round(written / messages, 2) if messages else None,
        "db_writes_per_delivery": round(written / deliveries, 3) if deliveries else None,
        "db_reads_per_message": round(read / messages, 3) if messages else None,
    }


# --- direct -------------------------------------------------------------------


class Direct:
    """Pairs exchange 1:1 messages: saturating (bounded window), then at half that rate."""

    def __init__(self, server: ServerProcess, pairs: list[list[Entry]], params: Params) -> None:
        self.server, self.params = server, params
        self.senders = 2 * len(pairs)
        self.pool = Pool(server.ws_url, pairs, params.workers, params.hard_seconds)
        connected = sum(a["connected"] for a in self.pool.command("connect"))
        self.connected = connected

    def _phase(self, interval: float | None) -> dict[str, Any]:
        p = self.params
        args = {
            "duration": p.duration,
            "window": p.window,
            "size": p.size,
            "grace": p.grace,
            "max_messages": 10_000_000,
            "interval": interval,
            "crypto": p.with_crypto,
        }
        self.pool.command("reset")
        meter, writes = _meter(self.server), WriteCounter.of(self.server)
        writes.start()
        commits = server_metrics.read(self.server.url)
        meter.start()
        answers = self.pool.command("direct", args)
        meter.stop()
        writes.stop()
        commits_after = server_metrics.read(self.server.url)
        totals = merge(answers)
        figures = _figures(totals, totals.get("seconds", p.duration), meter)
        return {
            **figures,
            **_writes(writes, totals["stored"], totals["deliveries"]),
            **server_metrics.phase(commits, commits_after),
        }

    def run(self) -> dict[str, Any]:
        saturated = self._phase(None)
        half_rate = saturated["messages_per_s"] / 2
        interval = self.senders / half_rate if half_rate > 0 else None
        half = self._phase(interval) if interval else {}
        return {**saturated, "connected": self.connected, "half_rate": half}

    def close(self) -> None:
        self.pool.close()


# --- fan-out: class and announcement ------------------------------------------


class Fanout:
    """One sender, one group ciphertext per message for every member device, acks."""

    def __init__(
        self,
        server: ServerProcess,
        sender: Entry,
        members: list[Entry],
        params: Params,
        count: int,
        window: int,
    ) -> None:
        self.server, self.params, self.count, self.window = server, params, count, window
        self.size = max(1, len(members))
        self.members = Pool(
            server.ws_url, [[m] for m in members], params.workers, params.hard_seconds
        )
        self.sender = Pool(server.ws_url, [[sender]], 1, params.hard_seconds)
        self.connected = sum(a["connected"] for a in self.members.command("connect"))
        self.sender.command("connect")

    def run(self) -> dict[str, Any]:
        p = self.params
        self.members.command("reset")
        self.sender.command("reset")
        meter, writes = _meter(self.server), WriteCounter.of(self.server)
        writes.start()
        meter.start()
        started = time.monotonic()
        sent = self.sender.command(
            "fanout",
            {
                "count": self.count,
                "window": self.window,
                "size": p.size,
                "duration": p.duration,
                "grace": p.grace,
            },
        )[0]
        expected = sent["stored"]
        waited = self.members.command("wait", {"expected": expected, "timeout": p.grace})
        meter.stop()
        writes.stop()
        totals = merge(self.members.command("reset"))
        ends = totals.get("seconds")
        figures = _figures(totals, ends if ends else time.monotonic() - started, meter)
        figures.update(_writes(writes, sent["stored"], totals["deliveries"]))
        # Each worker counts the group messages its devices saw: a message is
        # delivered to every member, so messages/s is deliveries/s per member.
        figures["messages_per_s"] = round(figures["deliveries_per_s"] / self.size, 2)
        figures["receipts_per_message"] = (
            round(totals["receipts"] / sent["stored"], 1) if sent["stored"] else None
        )
        figures["messages_sent"] = sent["stored"]
        figures["complete_devices"] = sum(w["complete"] for w in waited)
        figures["connected"] = self.connected
        figures["errors"] = {**figures["errors"], **sent["errors"]}
        return figures

    def close(self) -> None:
        self.members.close()
        self.sender.close()


# --- idle ---------------------------------------------------------------------


class Idle:
    """N authenticated idle connections: server RSS and RSS per connection."""

    def __init__(self, server: ServerProcess, devices: list[Entry], params: Params) -> None:
        self.server, self.params = server, params
        self.pool = Pool(server.ws_url, [[d] for d in devices], params.workers, params.hard_seconds)

    baseline: int | None = None
    """RSS before the first connection: memory freed by a run's disconnections stays
    in the process (Python's allocator), so later runs are measured against it too."""

    def run(self) -> dict[str, Any]:
        time.sleep(SETTLE_SECONDS)
        if self.baseline is None:
            self.baseline = sample(self.server.pid).rss_bytes
        before = self.baseline
        started = time.monotonic()
        answers = self.pool.command("connect")
        login_seconds = time.monotonic() - started
        time.sleep(SETTLE_SECONDS)
        after = sample(self.server.pid)
        connected = sum(a["connected"] for a in answers)
        errors = merge(self.pool.command("reset"))["errors"]
        self.pool.command("drop")
        return {
            "connected": connected,
            "login_seconds": round(login_seconds, 2),
            "logins_per_s": round(connected / login_seconds, 1),
            "server_rss_before_mib": round(before / 2**20, 1),
            "server_rss_mib": round(after.rss_bytes / 2**20, 1),
            "rss_per_connection_kib": round(
                (after.rss_bytes - before) / max(1, connected) / 1024, 2
            ),
            "errors": errors,
        }

    def close(self) -> None:
        self.pool.close()


# --- reconnect and offline ----------------------------------------------------


class Catchup:
    """Devices offline while messages are queued for them, then all connect at once.

    ``reconnect``: the devices were connected, drop together, miss ``messages``
    group messages, and reconnect together. ``offline``: ``messages`` 1:1
    messages per device are queued (the store rate is measured), then drained.
    One sender per bench school (:mod:`bench.layout`).
    """

    def __init__(
        self,
        server: ServerProcess,
        senders: list[Entry],
        devices: list[Entry],
        params: Params,
        pairwise: bool,
    ) -> None:
        self.server, self.params, self.pairwise = server, params, pairwise
        self.devices = len(devices)
        self.pool = Pool(server.ws_url, [[d] for d in devices], params.workers, params.hard_seconds)
        self.sender = Pool(server.ws_url, [[s] for s in senders], 1, params.hard_seconds)
        self.sender.command("connect")

    def run(self) -> dict[str, Any]:
        p = self.params
        if not self.pairwise:  # reconnect: they were online, then all drop at once
            self.pool.command("connect")
        self.pool.command("drop")
        self.pool.command("reset")
        meter = _meter(self.server)
        meter.start()
        queued_started = time.monotonic()
        args = {
            "count": p.messages,
            "window": p.window,
            "size": p.size,
            "duration": p.hard_seconds / 4,
            "grace": p.grace,
            "pairwise": self.pairwise,
        }
        sent = merge(self.sender.command("fanout", args))
        queue_seconds = time.monotonic() - queued_started
        meter.stop()
        queue_cpu = dict(meter.cpu)
        self.sender.command("reset")
        meter.start()
        started = time.monotonic()
        self.pool.command("connect")
        waited = self.pool.command("wait", {"expected": p.messages, "timeout": p.catch_up_timeout})
        seconds = time.monotonic() - started
        meter.stop()
        totals = merge(self.pool.command("reset"))
        figures = _figures(totals, seconds, meter)
        if not self.pairwise:  # group messages, counted once per worker: per member instead
            figures["messages_per_s"] = round(figures["deliveries_per_s"] / self.devices, 2)
        figures.update(
            devices=self.devices,
            complete_devices=sum(w["complete"] for w in waited),
            catch_up_seconds=round(seconds, 2),
            queued_envelopes=p.messages * self.devices,
            queue_seconds=round(queue_seconds, 2),
            queue_sends_per_s=round(sent["stored"] / queue_seconds, 1),
            queue_server_cpu_s=round(queue_cpu["server"], 3),
            queue_database_cpu_s=round(queue_cpu.get("database", 0.0), 3),
        )
        figures["errors"] = {**figures["errors"], **sent["errors"]}
        return figures

    def close(self) -> None:
        self.pool.close()
        self.sender.close()
