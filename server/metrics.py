"""Prometheus metrics (``/metrics``), one registry per application.

Names follow Prometheus conventions with the ``carnet_`` prefix: counters end
in ``_total``, durations are histograms in seconds.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, str], Any] = {}
        self.connected_devices = Gauge(
            "carnet_connected_devices",
            "Devices with an authenticated WebSocket on this node.",
            registry=self.registry,
        )
        self.frames_in = Counter(
            "carnet_frames_received_total",
            "WebSocket frames received from devices, by frame type.",
            ["type"],
            registry=self.registry,
        )
        self.frames_out = Counter(
            "carnet_frames_sent_total",
            "WebSocket frames sent to devices, by frame type.",
            ["type"],
            registry=self.registry,
        )
        self.errors = Counter(
            "carnet_errors_total",
            "Errors answered to clients (WebSocket and HTTP), by error code.",
            ["code"],
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "carnet_message_store_seconds",
            "Time to store a message durably (journaled, majority) before `sent`.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "carnet_message_batch_size",
            "Messages written together by one group commit (every conversation).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.deliveries = Counter(
            "carnet_deliveries_total",
            "Messages and events handed to connected devices, by path (local, stream, catch_up).",
            ["path"],
            registry=self.registry,
        )
        self.moderation_refusals = Counter(
            "carnet_moderation_refusals_total",
            "Actions refused by moderation, by action and reason code (docs/moderation.md).",
            ["action", "reason"],
            registry=self.registry,
        )
        self.moderation_deliveries = Counter(
            "carnet_moderation_deliveries_total",
            "Recipients of allowed sends, by delivery (notify, silent, drop).",
            ["delivery"],
            registry=self.registry,
        )
        self.moderation_reports = Counter(
            "carnet_moderation_reports_total",
            "Reports filed, by proof (verified, unverified).",
            ["proof"],
            registry=self.registry,
        )
        self.enrolments = Counter(
            "carnet_enrolments_total",
            "Enrolment attempts by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.closes = Counter(
            "carnet_websocket_closes_total",
            "WebSocket connections closed by the server, by close code.",
            ["code"],
            registry=self.registry,
        )
        self.audit_chain_valid = Gauge(
            "carnet_audit_chain_valid",
            "1 when the audit log's hash chain verifies, 0 when it does not.",
            registry=self.registry,
        )
        self.retention_last_success = Gauge(
            "carnet_retention_last_success_timestamp_seconds",
            "Unix time of each retention job's last successful run on this node.",
            ["job"],
            registry=self.registry,
        )
        self.retention_deleted = Counter(
            "carnet_retention_deleted_total",
            "Documents deleted by the retention jobs, by data category.",
            ["category"],
            registry=self.registry,
        )
        self.smtp_messages = Counter(
            "carnet_smtp_messages_total",
            "Emails of the SMTP bridge by outcome (queued, sent, failed, bounced).",
            ["outcome"],
            registry=self.registry,
        )

    def count(self, counter: Counter, label: str, amount: float = 1) -> None:
        """``counter.labels(label).inc(amount)``, the labelled child kept.

        ``labels()`` takes a lock and builds a key on every call: a few µs,
        several times per message on the send and delivery paths.
        """
        key = (id(counter), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(label)
        child.inc(amount)
