"""The tail's episodes: slow deliveries grouped by the tenth of a second they were sent in."""

from __future__ import annotations

from bench.pool import merge, slow_tenths

MS = 1_000_000


def test_only_tenths_holding_a_slow_delivery_are_listed() -> None:
    stamps = [5_000 * MS, 5_050 * MS, 5_120 * MS, 5_250 * MS, 5_260 * MS]
    latencies = [10.0, 60.0, 20.0, 80.25, 51.0]
    assert slow_tenths(stamps, latencies) == [[0.0, 2, 1, 60.0], [0.2, 2, 2, 80.2]]
    assert slow_tenths(stamps, [10.0] * 5) == []
    assert slow_tenths(stamps[:2], latencies) == []  # not one send time per latency


def test_merge_pools_the_workers_send_times_when_every_worker_has_them() -> None:
    one = {"latencies_ms": [70.0], "stamps_ns": [1_000 * MS]}
    two = {"latencies_ms": [5.0, 90.0], "stamps_ns": [1_030 * MS, 1_310 * MS]}
    assert merge([one, two])["slow_tenths"] == [[0.0, 2, 1, 70.0], [0.3, 1, 1, 90.0]]
    assert "slow_tenths" not in merge([{"latencies_ms": [70.0]}])  # Synapse's load
