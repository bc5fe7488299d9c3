"""A pool of load-generator processes and the numbers made from their answers."""

from __future__ import annotations

import multiprocessing
import statistics
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from bench.loadgen import worker_main
from bench.wire import BenchError

COMMAND_TIMEOUT = 900.0
QUIT_TIMEOUT = 10.0
SLOW_MS = 50.0
"""A delivery slower than this is part of the tail (issue 9: p99 ≤ 50 ms at half rate)."""
TENTH_NS = 100_000_000
MAX_TENTHS = 200


class Pool:
    """``workers`` processes sharing ``devices`` (dicts ``{creds, peer?}``).

    Devices listed in ``groups`` stay together in one worker (a 1:1 pair), so a
    worker can wait for its own outstanding deliveries.
    """

    def __init__(
        self, ws_url: str, groups: list[list[dict[str, Any]]], workers: int, hard_seconds: float
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        shares: list[list[dict[str, Any]]] = [[] for _ in range(max(1, min(workers, len(groups))))]
        for i, group in enumerate(groups):
            shares[i % len(shares)].extend(group)
        self.pipes: list[Connection] = []
        self.processes = []
        for share in shares:
            ours, theirs = ctx.Pipe()
            spec = {"ws_url": ws_url, "devices": share, "hard_seconds": hard_seconds}
            process = ctx.Process(target=worker_main, args=(theirs, spec), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def command(self, name: str, args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Give every worker the command; wait (bounded) for every answer.

        Raises:
            BenchError: a worker did not answer in time or died.
        """
        for pipe in self.pipes:
            pipe.send((name, args or {}))
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(COMMAND_TIMEOUT):
                raise BenchError(f"a load-generator worker did not answer {name!r}")
            try:
                answers.append(pipe.recv())
            except EOFError:
                raise BenchError(f"a load-generator worker died during {name!r}") from None
        return answers

    def close(self) -> None:
        """Ask every worker to quit (bounded wait: a busy one is killed)."""
        for pipe in self.pipes:
            try:
                pipe.send(("quit", {}))
                pipe.poll(QUIT_TIMEOUT)
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 3)


def slow_tenths(
    stamps_ns: list[int], latencies_ms: list[float], slow_ms: float = SLOW_MS
) -> list[list[float]]:
    """The tail's episodes: ``[offset s, messages, slower than slow_ms, slowest ms]``
    for each tenth of a second (by send time, from the first send) holding a
    delivery slower than ``slow_ms``; at most :data:`MAX_TENTHS`, the earliest.

    Slow deliveries come in episodes of a few tenths, not spread evenly
    (docs/performance.md, session 6): this says when, so that the phase can be
    lined up with what the server and the database did then.
    """
    if not stamps_ns or len(stamps_ns) != len(latencies_ms):
        return []
    first = min(stamps_ns)
    tenths: dict[int, list[float]] = {}
    for stamp, latency in zip(stamps_ns, latencies_ms, strict=True):
        tenths.setdefault((stamp - first) // TENTH_NS, []).append(latency)
    episodes = []
    for tenth in sorted(tenths):
        values = tenths[tenth]
        slow = sum(1 for v in values if v > slow_ms)
        if slow:
            episodes.append([tenth / 10, len(values), slow, round(max(values), 1)])
    return episodes[:MAX_TENTHS]


def merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the workers' counters; latencies pooled for percentiles and episodes."""
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    stamps: list[int] = []
    total: dict[str, Any] = {
        "sent": 0,
        "stored": 0,
        "deliveries": 0,
        "duplicates": 0,
        "refused": 0,
        "events": 0,
        "receipts": 0,
        "acknowledged": 0,
        "messages": 0,
    }
    for answer in answers:
        for key in total:
            total[key] += answer.get(key, 0)
        errors.update(answer.get("errors", {}))
        latencies.extend(answer.get("latencies_ms", []))
        stamps.extend(answer.get("stamps_ns", []))
    total["errors"] = dict(errors)
    total["latency_ms"] = {
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }
    if stamps:  # Synapse's load tells no send times
        total["slow_tenths"] = slow_tenths(stamps, latencies)
    starts = [a["started"] for a in answers if a.get("started")]
    ends = [a["last_delivery"] for a in answers if a.get("last_delivery")]
    if starts and ends:
        total["seconds"] = max(ends) - min(starts)
    return total


def median_of(runs: list[dict[str, Any]], path: str) -> float | None:
    """Median of the number at ``a.b.c`` over the runs that have it."""
    values = []
    for run in runs:
        value: Any = run
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None
