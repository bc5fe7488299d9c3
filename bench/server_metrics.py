"""Carnet's own view of a phase, from its ``/metrics`` (Prometheus text format).

The load generator sees send → deliver latency; the server's histograms say
where it went: how long group commits took (``carnet_message_store_seconds``)
and how many messages each carried (``carnet_message_batch_size``). Read
before and after a phase; the means are over that phase only. Servers
without ``/metrics`` (the bare relay) give nothing.
"""

from __future__ import annotations

import urllib.error
import urllib.request

HISTOGRAMS = ("carnet_message_store_seconds", "carnet_message_batch_size")


def read(url: str) -> dict[str, float] | None:
    """``<histogram>_sum`` and ``_count`` of :data:`HISTOGRAMS`, or None without metrics."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith(("_sum", "_count")) and name.rsplit("_", 1)[0] in HISTOGRAMS:
            found[name] = float(value)
    return found


def phase(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """Mean group-commit time (ms) and batch size between two readings."""
    if before is None or after is None:
        return {}
    out: dict[str, float] = {}
    commits = after.get("carnet_message_store_seconds_count", 0) - before.get(
        "carnet_message_store_seconds_count", 0
    )
    if commits > 0:
        spent = (
            after["carnet_message_store_seconds_sum"] - before["carnet_message_store_seconds_sum"]
        )
        stored = after["carnet_message_batch_size_sum"] - before["carnet_message_batch_size_sum"]
        out["group_commits"] = commits
        out["commit_ms_mean"] = round(1000 * spent / commits, 2)
        out["batch_size_mean"] = round(stored / commits, 1)
    return out
