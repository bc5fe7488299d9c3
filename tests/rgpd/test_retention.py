"""Retention jobs with the frozen clock: leavers erased after 90 days, holds honoured,
dry run per category and school, one node per job, expired data purged."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiohttp

from server.state import RETENTION
from storage.legal_holds import HoldKind
from storage.retention import school_year_end
from tests.rgpd.seed import bearer
from tests.support.servers import START, RunningServer, two_nodes

DAY = timedelta(days=1)


async def leave(http: aiohttp.ClientSession, carnet: RunningServer, person_id: str) -> None:
    async with http.post(
        f"{carnet.url}/v1/admin/people/{person_id}/leave", headers=bearer(carnet.operator_token)
    ) as r:
        assert r.status == 200, await r.text()


async def test_a_leaver_is_erased_after_the_retention_and_not_before(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str
) -> None:
    scheduler, store = carnet.app[RETENTION], carnet.store
    pid = carnet.person("E002")["person_id"]
    await leave(http, carnet, pid)
    ran = await scheduler.run_once(carnet.clock.now() + 89 * DAY)
    assert ran["people_left"] == {}
    assert await store.directory.person(pid) is not None
    carnet.clock.advance(91 * DAY)
    async with http.get(carnet.url + "/v1/dpo/retention/dry-run", headers=bearer(dpo_token)) as r:
        plan = (await r.json())["would_delete"]
    assert plan["people_left"] == {"9999999D": 1}
    ran = await scheduler.run_once(carnet.clock.now())
    assert ran["people_left"] == {"9999999D": 1}
    assert await store.directory.person(pid) is None
    # The parent's link to the erased child is gone too.
    parent = await store.directory.person_by_external_id("9999999D", "R003")
    assert parent is not None and parent.children == ()
    erasures = await store.audit.entries(action="person.erase")
    assert [(e["target"], e["actor"]) for e in erasures] == [(pid, "retention")]
    metrics = scheduler.metrics
    assert metrics.retention_deleted.labels("people_left")._value.get() == 1
    assert metrics.retention_last_success.labels("people_left")._value.get() > 0
    assert metrics.audit_chain_valid._value.get() == 1


async def test_a_legal_hold_suspends_the_purge_until_lifted(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str
) -> None:
    scheduler, store = carnet.app[RETENTION], carnet.store
    pid = carnet.person("E003")["person_id"]
    await leave(http, carnet, pid)
    async with http.post(
        carnet.url + "/v1/dpo/holds",
        json={
            "kind": "person",
            "subject": pid,
            "reason": "complaint under investigation",
            "until": (START + 365 * DAY).isoformat(),
        },
        headers=bearer(dpo_token),
    ) as r:
        hold = await r.json()
        assert r.status == 201, hold
    now = carnet.clock.now() + 100 * DAY
    assert (await scheduler.run_once(now))["people_left"] == {}
    assert await store.directory.person(pid) is not None
    # Erasure by the DPO is refused as well while the hold lasts.
    async with http.post(
        f"{carnet.url}/v1/dpo/people/{pid}/erase", json={}, headers=bearer(dpo_token)
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (409, "conflict")
    async with http.delete(
        f"{carnet.url}/v1/dpo/holds/{hold['_id']}", headers=bearer(dpo_token)
    ) as r:
        assert r.status == 200
    later = now + 2 * DAY
    assert (await scheduler.run_once(later))["people_left"] == {"9999999D": 1}
    assert await store.directory.person(pid) is None
    actions = [e["action"] for e in await store.audit.entries(limit=1000)]
    assert actions.index("hold.place") < actions.index("hold.release")


async def test_a_hold_also_ends_on_its_date(carnet: RunningServer) -> None:
    store, now = carnet.store, carnet.clock.now()
    pid = carnet.person("E001")["person_id"]
    await store.holds.place(HoldKind.PERSON, pid, "9999999D", "x", now + 10 * DAY, "dpo:t", now)
    assert await store.holds.held([pid], now + 9 * DAY) == {pid}
    assert await store.holds.held([pid], now + 11 * DAY) == set()


async def test_each_job_runs_on_exactly_one_of_two_nodes(database_uri: str, tmp_path: Path) -> None:
    """Two Carnet apps share one database; each job runs on one of them only."""
    async with two_nodes(database_uri, tmp_path, retention_scheduler=False) as (a, b):
        node_a, node_b = a.app[RETENTION], b.app[RETENTION]
        assert node_a.owner != node_b.owner
        now = a.clock.now() + DAY
        first, second = await asyncio.gather(node_a.run_once(now), node_b.run_once(now))
        jobs = {*node_a.jobs, "audit_verify"}
        assert set(first) | set(second) == jobs
        assert not set(first) & set(second)
        # Not due again until the interval has passed, on either node.
        assert await node_a.run_once(now + DAY / 2) == {}
        assert await node_b.run_once(now + DAY / 2) == {}
        assert set(await node_b.run_once(now + DAY)) == jobs
        # A node that died holding a lease loses it when the lease expires.
        lease = timedelta(seconds=a.settings.retention_lease_seconds)
        later = now + 2 * DAY
        assert await b.store.leases.acquire("audit_verify", "dead-node", later, lease)
        assert await node_a.run_job("audit_verify", later) is None
        assert await node_a.run_job("audit_verify", later + lease) == {}


async def test_expired_ciphertext_and_old_metadata_are_purged_unless_held(
    carnet: RunningServer,
) -> None:
    store, db, now = carnet.store, carnet.store.db, carnet.clock.now()
    scheduler = carnet.app[RETENTION]
    await db["conversations"].insert_many(
        [
            {
                "_id": "c_archived00001",
                "uai": "9999999D",
                "members": [],
                "created_at": now,
                "archived_at": now + 10 * DAY,
            },
            {
                "_id": "c_archivedheld1",
                "uai": "9999999D",
                "members": [],
                "created_at": now,
                "archived_at": now + 10 * DAY,
            },
        ]
    )
    await db["messages"].insert_many(
        [
            {
                "_id": "m_expired000001",
                "conversation": "c_archived00001",
                "created_at": now,
                "expires_at": now + 30 * DAY,
                "pairwise": {"d_x0000000001": b"ct"},
            },
            {
                "_id": "m_fresh00000001",
                "conversation": "c_archivedheld1",
                "created_at": now,
                "expires_at": now + 900 * DAY,
            },
        ]
    )
    await db["receipts"].insert_one(
        {"conversation": "c_archived00001", "seq": 1, "person_id": "p_x", "at": now}
    )
    await store.holds.place(
        HoldKind.CONVERSATION, "c_archivedheld1", "9999999D", "x", now + 900 * DAY, "dpo:t", now
    )
    # 31 days later: the undelivered message is gone, the metadata stays.
    ran = await scheduler.run_once(now + 31 * DAY)
    assert ran["undelivered"] == {"9999999D": 1}
    assert await db["messages"].count_documents({}) == 1
    assert await db["conversations"].count_documents({}) == 2
    # After the end of the school year + 60 days: the archived conversation goes,
    # with its receipts; the held one stays.
    later = START.replace(year=START.year + 1) + 61 * DAY
    assert school_year_end(later, 60 * DAY) > now + 10 * DAY
    plan = await scheduler.plan(later, "9999999D")
    assert plan["conversation_metadata"] == {"9999999D": 1}
    ran = await scheduler.run_once(later)
    assert ran["conversation_metadata"] == {"9999999D": 1}
    assert [d["_id"] async for d in db["conversations"].find({})] == ["c_archivedheld1"]
    assert await db["receipts"].count_documents({}) == 0
    assert await db["messages"].count_documents({"conversation": "c_archivedheld1"}) == 1


def test_school_year_end_with_margin() -> None:
    margin = 60 * DAY
    assert school_year_end(START.replace(month=11, day=15), margin) == START.replace(
        month=9, day=1, hour=0
    )
    october = START.replace(month=10, day=15, hour=0)
    assert school_year_end(october, margin) == october.replace(year=START.year - 1, day=1, month=9)
