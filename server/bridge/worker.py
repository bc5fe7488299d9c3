"""The bridge worker: one pass opens new mail for every bridge device and sends due emails.

:meth:`BridgeWorker.run_once` is the whole job, driven by a loop every
``bridge_interval_seconds`` or by tests (with the injected clock). A pass:

1. creates the ``email-bridge`` device of every ``email_only`` parent who has
   none yet (the directory import sets the flag);
2. for each bridge device whose lease it gets (exactly one node processes a
   device at a time; a dead node's lease lapses), opens what the device has
   not acknowledged, keeps it sealed for the reading page, queues one email per
   conversation per batch window, then acknowledges it;
3. claims due emails and hands them to the relay, per-domain rate limited,
   with retries and exponential backoff; a permanent refusal is a bounce,
   recorded for the school (``GET /v1/admin/schools/{uai}/email-bridge/bounces``).

An email is marked sent only after the relay accepted it, and claimed by one
node at a time: a relay outage delays mail, never loses or doubles it (a crash
between the relay's answer and the mark is the one window for a duplicate,
with the same ``Message-ID``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from server.bridge import tokens
from server.bridge.errors import SealBroken, StateConflict
from server.bridge.keyring import BridgeKeyring
from server.bridge.mail import Notification, Shown, compose, local_time
from server.bridge.relay import Outcome, backoff, hand_over
from server.bridge.service import BridgeDevices
from server.services import Services
from storage.bridge import Token
from storage.conversations import ConversationKind
from storage.errors import DatabaseUnavailable, DriverError

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
PAGE = 200
SEND_BATCH = 50
Doc = dict[str, Any]


class BridgeWorker:
    """Runs the bridge on one node.

    Args:
        services: the node's services.
        keyring: the bridge keys.
        node: this node's id (lease owner).
    """

    def __init__(self, services: Services, keyring: BridgeKeyring, node: str) -> None:
        self.s = services
        self.settings = services.settings
        self.store = services.store
        self.keyring = keyring
        self.node = node
        self.devices = BridgeDevices(services, keyring)

    @property
    def base_url(self) -> str:
        return (self.settings.public_url or self.settings.public_origin).rstrip("/")

    async def run_once(self) -> dict[str, int]:
        """One pass (module docstring); returns what it did, for logs and tests."""
        done = {"created": 0, "opened": 0, "sent": 0, "retry": 0, "bounced": 0, "failed": 0}
        for person in await self.store.bridge.email_only_without_device():
            _, created = await self.devices.create(person["_id"], person["uai"], person["email"])
            done["created"] += created
        for device_id in await self.store.bridge.device_ids():
            done["opened"] += await self._process(device_id)
        for outbox in await self.store.bridge.claim_due(self.s.clock.now(), LEASE, SEND_BATCH):
            done[await self._send(outbox)] += 1
        return done

    async def _process(self, device_id: str) -> int:
        now = self.s.clock.now()
        if not await self.store.bridge.lease(device_id, self.node, now, LEASE):
            return 0
        try:
            return await self.devices.process(device_id, PAGE)
        except StateConflict:
            return 0  # a reply moved the state meanwhile: the next pass resumes
        except SealBroken:
            log.error("bridge device %s: state does not open with the bridge key", device_id)
            return 0
        finally:
            await self.store.bridge.release(device_id, self.node)

    async def _send(self, outbox: Doc) -> str:
        now = self.s.clock.now()
        minute = now.strftime("%Y%m%d%H%M")
        if not await self.store.bridge.take_rate(
            outbox["domain"], minute, self.settings.bridge_domain_rate_per_minute,
            now + timedelta(minutes=5),
        ):  # fmt: skip
            await self.store.bridge.defer(outbox["_id"], now + timedelta(minutes=1))
            return "retry"
        message = await self._compose(outbox)
        result = await hand_over(self.settings, message, self.settings.bridge_from_address,
                                 outbox["to"])  # fmt: skip
        attempts = int(outbox.get("attempts", 0)) + 1
        metrics = self.s.metrics.smtp_messages
        if result.outcome == Outcome.SENT:
            await self.store.bridge.mark_sent(outbox["_id"], now)
            metrics.labels("sent").inc()
            return "sent"
        if result.outcome == Outcome.BOUNCED:
            await self.store.bridge.mark_final(outbox, "bounced", result.code, result.reason, now)
            metrics.labels("bounced").inc()
            log.warning("bridge email %s bounced (%s)", outbox["_id"], result.code)
            return "bounced"
        if attempts >= self.settings.bridge_max_attempts:
            await self.store.bridge.mark_final(outbox, "failed", result.code, result.reason, now)
            metrics.labels("failed").inc()
            return "failed"
        await self.store.bridge.mark_retry(
            outbox["_id"], attempts, now + backoff(self.settings, attempts), result.reason
        )
        log.info("bridge email %s: relay unavailable (%s), retry %d", outbox["_id"],
                 result.reason, attempts)  # fmt: skip
        return "retry"

    async def new_link(self, device_id: str, person_id: str, conversation: str) -> Token:
        token_id, text = tokens.new_token(self.keyring, tokens.LINK)
        expires = self.s.clock.now() + timedelta(hours=self.settings.bridge_link_hours)
        token = Token(tokens.LINK, token_id, device_id, person_id, conversation, expires)
        await self.store.bridge.add_token(token)
        return Token(tokens.LINK, text, device_id, person_id, conversation, expires)

    async def _compose(self, outbox: Doc) -> Any:
        device_id, conversation_id = outbox["device_id"], outbox["conversation"]
        conversation = await self.store.conversations.get(conversation_id)
        school = await self.store.directory.school(outbox["uai"])
        seqs = tuple(sorted(int(s) for s in outbox.get("seqs", ())))
        try:
            kept = await self.devices.mailbox(device_id, conversation_id, seqs=seqs)
        except SealBroken:
            kept = []
        names = await self._names({k.sender_person for k in kept})
        title = conversation.title if conversation and conversation.title else ""
        if conversation and conversation.kind == ConversationKind.DIRECT:
            title = title or "Message direct / Direct message"
        timezone = school.timezone if school else "Europe/Paris"
        link = await self.new_link(device_id, outbox["person_id"], conversation_id)
        reply_to = None
        if (
            self.settings.bridge_reply_domain
            and conversation is not None
            and self.devices.may_reply(conversation, outbox["person_id"])
        ):
            token_id, text = tokens.new_token(self.keyring, tokens.REPLY)
            await self.store.bridge.add_token(
                Token(tokens.REPLY, token_id, device_id, outbox["person_id"], conversation_id,
                      link.expires_at + timedelta(days=self.settings.bridge_reply_days))
            )  # fmt: skip
            reply_to = tokens.reply_address(text, self.settings.bridge_reply_domain)
        full = await self.store.bridge.full_content(outbox["uai"])
        shown = tuple(
            Shown(
                k.seq, names.get(k.sender_person, "?"), local_time(k.created_at, timezone), k.text
            )
            for k in kept
        )
        return compose(
            Notification(
                outbox_id=outbox["_id"],
                to=outbox["to"],
                from_address=self.settings.bridge_from_address,
                school=school.name if school else outbox["uai"],
                senders=tuple(sorted({s.sender for s in shown})) or ("Carnet",),
                conversation=title or "Carnet",
                count=max(1, len(seqs)),
                last_at=kept[-1].created_at if kept else self.s.clock.now(),
                link=f"{self.base_url}/bridge/m/{link.token_id}",
                link_expires=link.expires_at,
                reply_to=reply_to,
                messages=shown if full else (),
                timezone=timezone,
            )
        )

    async def _names(self, person_ids: set[str]) -> dict[str, str]:
        names = {}
        for person_id in person_ids:
            person = await self.store.directory.person(person_id)
            names[person_id] = person.display_name if person else "?"
        return names

    async def safe_run_once(self) -> None:
        """:meth:`run_once` for the background loop: database trouble is logged, not raised."""
        try:
            await self.run_once()
        except (DatabaseUnavailable, DriverError) as exc:
            log.warning("bridge pass failed: %s", type(exc).__name__)
