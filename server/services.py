"""The long-lived objects a request or connection works with, in one typed bundle."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from crypto import FrankingKeyring
from server.clock import Clock
from server.config import Settings
from server.delivery_reads import DeliveryReads
from server.device_sessions import DeviceSessions
from server.fanout import Fanout
from server.hub import Hub
from server.lookups import Lookups
from server.metrics import Metrics
from server.moderation_gate import ModerationGate
from server.receipts import Receipts
from server.sequencer import Sequencer
from storage.database import Store


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    clock: Clock
    metrics: Metrics
    hub: Hub
    fanout: Fanout
    sequencer: Sequencer
    receipts: Receipts
    lookups: Lookups
    franking: FrankingKeyring
    sessions: DeviceSessions
    gate: ModerationGate
    """Moderation decisions and incident controls (``server.moderation_gate``)."""
    reads: DeliveryReads
    """What logins and catch-ups read, batched or from memory (``server.delivery_reads``)."""


SERVICES = web.AppKey("services", Services)
