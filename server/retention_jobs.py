"""Retention jobs and their scheduler (RGPD art. 5(1)(e); arrêté ENT 30/11/2006, art. 6).

Jobs, one per data category (durations in :class:`storage.retention.RetentionPolicy`,
built from the settings by :func:`policy_from`):

- ``people_left``: erase the accounts of people who left more than
  ``retention_left_days`` ago (:func:`server.dpo_erasure.erase_person`, the
  whole cascade), unless a legal hold protects them;
- ``undelivered``: ciphertext past its undelivered lifetime (backs the TTL);
- ``conversation_metadata`` and ``receipts``: past the end of their school
  year plus a margin, unless held;
- ``reports``: reports and moderation decisions past their retention;
- ``audit_log``: audit entries past their retention (chain re-anchored);
- ``dpo_requests``: closed subject requests past their retention;
- ``audit_verify``: verifies the audit chain, sets ``carnet_audit_chain_valid``.

:meth:`RetentionScheduler.run_once` runs every job that is due, each under
a lease (:class:`storage.leases.LeaseRepository`) so that with several nodes
exactly one runs it; tests call it directly with the frozen clock's time.
:meth:`RetentionScheduler.serve` calls it every ``retention_tick_seconds``
until stopped. :meth:`RetentionScheduler.plan` is the dry run: what each
category would delete, per school, without deleting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from server.clock import Clock, every
from server.config import Settings
from server.dpo_erasure import ErasureBlocked, erase_person
from server.metrics import Metrics
from storage.database import Store
from storage.errors import DriverError, StorageError
from storage.ids import new_id
from storage.retention import Counts, RetentionPolicy, school_year_end

log = logging.getLogger(__name__)

ACTOR = "retention"
Job = Callable[[datetime, bool, str | None], Awaitable[Counts]]


def policy_from(settings: Settings) -> RetentionPolicy:
    """The retention policy the settings describe."""
    days = timedelta(days=1)
    return RetentionPolicy(
        undelivered=settings.undelivered_days * days,
        metadata_margin=settings.retention_metadata_margin_days * days,
        receipts_margin=settings.retention_receipts_margin_days * days,
        reports=settings.retention_reports_days * days,
        audit_log=settings.retention_audit_days * days,
        access_logs=settings.retention_access_log_days * days,
        attachments=settings.retention_attachment_days * days,
        people_left=settings.retention_left_days * days,
        dpo_requests=settings.retention_requests_days * days,
    )


def node_name() -> str:
    """This process's lease owner name: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('n', 6)}"


class RetentionScheduler:
    """Runs the retention jobs (see the module docstring).

    Args:
        store: the repositories.
        settings: the retention settings.
        clock: the time source (``serve`` asks it; ``run_once`` is handed a time).
        metrics: where job outcomes are exported.
        owner: this node's lease owner name.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.owner = owner or node_name()
        self.policy = policy_from(settings)
        self.jobs: dict[str, Job] = {
            "people_left": self._people_left,
            "undelivered": self._undelivered,
            "conversation_metadata": self._conversation_metadata,
            "receipts": self._receipts,
            "reports": self._reports,
            "audit_log": self._audit_log,
            "dpo_requests": self._dpo_requests,
            "class_channels": self._class_channels,
        }

    # -- the jobs -----------------------------------------------------------------------

    async def _held(self, now: datetime) -> set[str]:
        return {doc["subject"] for doc in await self.store.holds.holds(None, now)}

    async def _people_left(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        cutoff = self.policy.cutoffs(now)["people_left"]
        held = await self._held(now)
        counts: Counts = {}
        for doc in await self.store.retention.leavers(cutoff, school):
            if doc["_id"] in held:
                continue
            if not dry_run:
                try:
                    await erase_person(self.store, doc["_id"], ACTOR, now)
                except ErasureBlocked:
                    continue
            counts[doc["uai"]] = counts.get(doc["uai"], 0) + 1
        return counts

    async def _class_channels(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        """The end of a school year (1 September) archives its class channels;
        their metadata then follows ``conversation_metadata``."""
        cutoff = school_year_end(now, timedelta(0))
        return await self.store.conversations.archive_classes_before(cutoff, now, dry_run, school)

    async def _undelivered(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        return await self.store.retention.undelivered(now, dry_run, school)

    async def _conversation_metadata(
        self, now: datetime, dry_run: bool, school: str | None
    ) -> Counts:
        cutoff = self.policy.cutoffs(now)["conversation_metadata"]
        held = await self._held(now)
        return await self.store.retention.conversation_metadata(cutoff, held, dry_run, school)

    async def _receipts(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        cutoff = self.policy.cutoffs(now)["receipts"]
        return await self.store.retention.receipts(cutoff, await self._held(now), dry_run, school)

    async def _reports(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        cutoff = self.policy.cutoffs(now)["reports"]
        return await self.store.retention.reports(cutoff, await self._held(now), dry_run, school)

    async def _audit_log(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        cutoff = self.policy.cutoffs(now)["audit_log"]
        if dry_run:
            return await self.store.audit.count_before(cutoff, school)
        removed = await self.store.audit.truncate_before(cutoff)
        return {"*": removed} if removed else {}

    async def _dpo_requests(self, now: datetime, dry_run: bool, school: str | None) -> Counts:
        cutoff = self.policy.cutoffs(now)["dpo_requests"]
        if dry_run:
            return await self.store.dpo_requests.count_closed_before(cutoff, school)
        removed = await self.store.dpo_requests.purge_closed_before(cutoff)
        return {"*": removed} if removed else {}

    # -- running ------------------------------------------------------------------------

    async def plan(self, now: datetime, school: str | None = None) -> dict[str, Counts]:
        """The dry run: per category, what would be deleted now, per school."""
        return {name: await job(now, True, school) for name, job in self.jobs.items()}

    async def verify_audit(self) -> bool:
        """Verify the audit chain and export the result as ``carnet_audit_chain_valid``."""
        result = await self.store.audit.verify()
        self.metrics.audit_chain_valid.set(1 if result.ok else 0)
        if not result.ok:
            log.error("audit chain broken at %s: %s", result.first_bad_seq, result.problem)
        return result.ok

    async def run_job(self, name: str, now: datetime) -> Counts | None:
        """Run one job if it is due and this node takes its lease; None if skipped.

        Raises:
            StorageError, DriverError: the job failed; its lease is given back
                and it stays due.
        """
        hold_for = timedelta(seconds=self.settings.retention_lease_seconds)
        if not await self.store.leases.acquire(name, self.owner, now, hold_for):
            return None
        try:
            if name == "audit_verify":
                counts: Counts = {} if await self.verify_audit() else {"broken": 1}
            else:
                counts = await self.jobs[name](now, False, None)
        except BaseException:
            await self.store.leases.release(name, self.owner, now)
            raise
        next_due = now + timedelta(seconds=self.settings.retention_interval_seconds)
        await self.store.leases.complete(name, self.owner, now, next_due, {"deleted": counts})
        self.metrics.retention_last_success.labels(name).set(now.timestamp())
        total = sum(counts.values())
        if total and name != "audit_verify":
            self.metrics.retention_deleted.labels(name).inc(total)
            await self.store.audit.record(
                ACTOR, "retention.purge", name, None, {"deleted": counts}, now
            )
        return counts

    async def run_once(self, now: datetime) -> dict[str, Counts]:
        """Run every due job this node can lease; returns what each run job deleted.

        A failing job is logged and left due; the others still run.
        """
        ran: dict[str, Counts] = {}
        for name in [*self.jobs, "audit_verify"]:
            try:
                counts = await self.run_job(name, now)
            except (StorageError, DriverError):
                log.exception("retention job %s failed; it stays due", name)
                continue
            if counts is not None:
                ran[name] = counts
        return ran

    async def serve(self, stop: asyncio.Event) -> None:
        """Call :meth:`run_once` every tick until ``stop`` is set."""
        await every(
            stop, self.settings.retention_tick_seconds, lambda: self.run_once(self.clock.now())
        )

    def describe(self) -> dict[str, Any]:
        """Job names and their period, for the register and operators."""
        return {
            "jobs": [*self.jobs, "audit_verify"],
            "interval_seconds": self.settings.retention_interval_seconds,
        }
