"""Incident controls on every node, logged-in sessions, notices (issue 5, "Incident controls").

Controls (``incident_controls``) are written by one node and take effect on
all of them within seconds: each node follows ``incident_controls`` and
``notices`` on its change feed (``server.change_feed``), and rebuilds its
:class:`moderation.IncidentState` from the active controls on every change,
and at the latest every :data:`RELOAD_SECONDS` (should the stream miss one).

"Log out every device of a school" (a ``logout_all`` control at ``at``):

- every WebSocket of that school opened at or before ``at`` is closed with
  code 4003 (``server.connection.CLOSE_LOGGED_OUT``) on whichever node holds it;
- a device session token issued at or before ``at`` is refused (401) by the
  REST API; a new login gets a new, valid one.

Notices (``notice`` frames, e.g. a new device on one's account, a report's
outcome) go to the devices held here at once and to other nodes through the
``notices`` collection; a device offline at that moment does not get them
(reporters can also poll ``GET /v1/reports``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from moderation import IncidentState, Suspension, SuspensionScope
from server.change_feed import FEED, ChangeFeed
from server.clock import Clock
from server.device_sessions import LIFETIME
from server.hub import Hub
from server.moderation_gate import GATE, ModerationGate
from server.state import CLOCK, HUB, METRICS, STORE
from storage.database import Store
from storage.errors import DatabaseUnavailable, DriverError
from storage.ids import new_id
from storage.models import Device

log = logging.getLogger(__name__)

RELOAD_SECONDS = 5.0
Doc = dict[str, Any]


class Session(Protocol):
    """What the controls need of a logged-in connection."""

    device_id: str

    def log_out(self) -> None: ...


@dataclass(frozen=True)
class _Open:
    session: Session
    uai: str
    opened_at: datetime


def state_of(controls: Sequence[Doc]) -> IncidentState:
    """The incident state the active controls describe (oldest first)."""
    state = IncidentState()
    for c in controls:
        action, uai = c["action"], c["uai"]
        if action == "suspend_sending":
            scope = SuspensionScope(c["scope"])
            state = state.with_suspension(Suspension(uai, scope, c.get("target", ""), c["until"]))
        elif action == "close_pupils":
            state = state.with_pupils_closed(uai)
        elif action == "logout_all":
            state = state.with_logout_all(uai, c["at"])
        elif action == "suspend_person":
            state = state.with_person_suspended(c["target"], c["until"])
    return state


class IncidentControls:
    """The node's incident state, its logged-in sessions and notice relay.

    Args:
        gate: The gate whose ``incidents`` this keeps current.
        store: The repositories.
        clock: The node's clock.
        hub: This node's connections (for notices).
    """

    def __init__(self, gate: ModerationGate, store: Store, clock: Clock, hub: Hub) -> None:
        self.gate = gate
        self.store = store
        self.clock = clock
        self.hub = hub
        self.node = new_id("n", 6)
        self._open: dict[str, _Open] = {}
        self._reloaded = 0.0

    @property
    def state(self) -> IncidentState:
        return self.gate.incidents

    async def reload(self) -> None:
        """Rebuild the state from the database and close logged-out sessions."""
        controls = await self.store.moderation.incidents.active(self.clock.now())
        self.gate.incidents = state_of(controls)
        self._reloaded = time.monotonic()
        for device_id, entry in list(self._open.items()):
            if not self.gate.incidents.session_valid(entry.uai, entry.opened_at):
                del self._open[device_id]
                entry.session.log_out()

    # --- sessions -------------------------------------------------------------------

    async def login(self, session: Session, person_id: str, opened_at: datetime) -> bool:
        """Register a WebSocket session; False if its school logged everyone out since."""
        person = (await self.gate.lookup().load([person_id])).get(person_id)
        uai = person.uai if person is not None else ""
        if not self.state.session_valid(uai, opened_at):
            return False
        self._open[session.device_id] = _Open(session, uai, opened_at)
        return True

    def logout(self, session: Session) -> None:
        """The session ended."""
        entry = self._open.get(session.device_id)
        if entry is not None and entry.session is session:
            del self._open[session.device_id]

    def valid(self, session: Session) -> bool:
        """Whether a registered session is still valid (checked on every frame)."""
        entry = self._open.get(session.device_id)
        if entry is None or entry.session is not session:
            return False
        return self.state.session_valid(entry.uai, entry.opened_at)

    async def token_valid(self, device: Device, token: str) -> bool:
        """Whether a device session token survives every "log out all" of its school."""
        if not self.state.logged_out:
            return True
        expires = token.split(".")[1] if token.count(".") == 3 else ""
        if not expires.isdigit():
            return False
        issued = datetime.fromtimestamp(int(expires) / 1000, self.clock.now().tzinfo) - LIFETIME
        person = (await self.gate.lookup().load([device.person_id])).get(device.person_id)
        return person is not None and self.state.session_valid(person.uai, issued)

    # --- controls -----------------------------------------------------------------

    async def add(self, control: Doc) -> str:
        """Store a control and apply it on this node now (the others follow the stream)."""
        if control["action"] == "logout_all":
            await self.store.moderation.incidents.lift_where(
                control["uai"], "logout_all", control["at"]
            )
        ident = await self.store.moderation.incidents.add(control)
        await self.reload()
        return ident

    # --- notices ------------------------------------------------------------------

    async def notify(self, devices: Sequence[str], kind: str, text: str) -> None:
        """Send an unsequenced frame to devices on every node (best effort, live only)."""
        if not devices:
            return
        for device_id in devices:
            self.hub.notify(device_id, kind, text)
        await self.store.moderation.notices.add(self.node, devices, text, self.clock.now())

    def _deliver_notice(self, doc: Doc) -> None:
        if doc.get("node") == self.node:
            return
        for device_id in doc.get("devices", ()):
            self.hub.notify(device_id, "notice", doc["frame"])

    # --- following other nodes ----------------------------------------------------------

    def follow(self, feed: ChangeFeed) -> None:
        """Apply other nodes' controls and relay their notices (the node's change feed);
        reload at the latest every :data:`RELOAD_SECONDS`, should a change be missed."""
        feed.subscribe("incident_controls", self._on_control)
        feed.subscribe("notices", self._on_notice)
        feed.on_open(self.reload)  # whatever changed while the stream was closed
        feed.on_idle(self._on_idle)

    async def _on_control(self, change: Doc) -> None:
        await self.reload()

    async def _on_notice(self, change: Doc) -> None:
        if change["operationType"] == "insert":
            self._deliver_notice(change["fullDocument"])

    async def _on_idle(self) -> None:
        if time.monotonic() - self._reloaded > RELOAD_SECONDS:
            await self.reload()
            self.gate.prune()


CONTROLS = web.AppKey("incident_controls", IncidentControls)


async def moderation_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the gate and the incident controls, followed until shutdown."""
    gate = ModerationGate(app[STORE], app[CLOCK], app[METRICS])
    controls = IncidentControls(gate, app[STORE], app[CLOCK], app[HUB])
    gate.controls = controls
    app[GATE], app[CONTROLS] = gate, controls
    try:
        await controls.reload()
    except (DatabaseUnavailable, DriverError) as exc:
        log.warning("incident controls not loaded at start (%s); the stream retries", exc)
    controls.follow(app[FEED])
    gate.follow(app[FEED])
    yield
