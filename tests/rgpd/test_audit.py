"""The audit log: hash chain, concurrent writers, tampering found, actions recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp

from server.state import RETENTION
from tests.rgpd.seed import Seeded, bearer
from tests.support.servers import RunningServer


async def test_concurrent_writers_make_one_unbroken_chain(carnet: RunningServer) -> None:
    audit = carnet.store.audit
    now = carnet.clock.now()
    await asyncio.gather(
        *(audit.record("dpo:t", "test.write", None, None, {"i": i}, now) for i in range(25))
    )
    entries = await audit.entries(action="test.write", limit=100)
    assert sorted(e["details"]["i"] for e in entries) == list(range(25))
    result = await audit.verify()
    assert result.ok and result.checked >= 25, result


async def test_an_edited_entry_is_pinpointed(carnet: RunningServer) -> None:
    audit, now = carnet.store.audit, carnet.clock.now()
    for i in range(5):
        await audit.record("dpo:t", "test.write", None, None, {"i": i}, now)
    victim = (await audit.entries(action="test.write"))[2]
    await carnet.store.db["audit_log"].update_one(
        {"_id": victim["seq"]}, {"$set": {"details.i": 99}}
    )
    result = await audit.verify()
    assert not result.ok
    assert result.first_bad_seq == victim["seq"]
    assert result.problem == "content does not match its hash"


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    carnet: RunningServer,
) -> None:
    from storage.audit import entry_hash

    audit, now = carnet.store.audit, carnet.clock.now()
    for i in range(4):
        await audit.record("dpo:t", "test.write", None, None, {"i": i}, now)
    victim = (await audit.entries(action="test.write"))[1]
    forged = {**victim, "details": {"i": 42}}
    await carnet.store.db["audit_log"].update_one(
        {"_id": victim["seq"]}, {"$set": {"details": {"i": 42}, "hash": entry_hash(forged)}}
    )
    result = await audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, victim["seq"] + 1)
    assert result.problem == "prev_hash does not match"


async def test_a_deleted_entry_is_a_gap(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str
) -> None:
    audit, now = carnet.store.audit, carnet.clock.now()
    for i in range(5):
        await audit.record("dpo:t", "test.write", None, None, {"i": i}, now)
    victim = (await audit.entries(action="test.write"))[3]
    await carnet.store.db["audit_log"].delete_one({"_id": victim["seq"]})
    async with http.get(carnet.url + "/v1/dpo/audit/verify", headers=bearer(dpo_token)) as r:
        body = await r.json()
    assert r.status == 200
    assert body["ok"] is False and body["first_bad_seq"] == victim["seq"]
    assert body["problem"] == f"entry {victim['seq']} is missing"
    # The verify job exports the result.
    assert not await carnet.app[RETENTION].verify_audit()
    assert carnet.app[RETENTION].metrics.audit_chain_valid._value.get() == 0


async def test_a_truncated_tail_is_found(carnet: RunningServer) -> None:
    audit, now = carnet.store.audit, carnet.clock.now()
    for i in range(3):
        await audit.record("dpo:t", "test.write", None, None, {"i": i}, now)
    last = (await audit.entries(action="test.write"))[-1]
    await carnet.store.db["audit_log"].delete_one({"_id": last["seq"]})
    result = await audit.verify()
    assert (result.ok, result.first_bad_seq) == (False, last["seq"])


async def test_retention_truncates_the_start_and_the_chain_still_verifies(
    carnet: RunningServer,
) -> None:
    audit, start = carnet.store.audit, carnet.clock.now()
    await audit.record("dpo:t", "test.old", None, None, {}, start)
    later = start + timedelta(days=400)
    await audit.record("dpo:t", "test.new", None, None, {}, later)
    assert await audit.truncate_before(later - timedelta(days=365)) >= 1
    assert await audit.entries(action="test.old") == []
    result = await audit.verify()
    assert result.ok, result


async def test_admin_and_dpo_actions_are_recorded_and_reading_is_audited(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str, seeded: Seeded
) -> None:
    pid = seeded.person["person_id"]
    async with http.get(
        carnet.url + "/v1/dpo/audit",
        params={"target": pid},
        headers=bearer(dpo_token),
    ) as r:
        body = await r.json()
    assert r.status == 200, body
    actions = [e["action"] for e in body["entries"]]
    assert "enrolment_code.issue" in actions
    # Person ids are written as aliases, never in clear.
    assert all(e["target"] != pid for e in body["entries"])
    async with http.get(
        carnet.url + "/v1/dpo/audit", params={"action": "audit.read"}, headers=bearer(dpo_token)
    ) as r:
        body = await r.json()
    assert [e["action"] for e in body["entries"]] == ["audit.read"]
    assert body["entries"][0]["actor"].startswith("dpo:")
    tokens = await carnet.store.audit.entries(action="token.create")
    assert len(tokens) >= 2  # the demo operator's and the DPO's
    assert (await carnet.store.audit.verify()).ok
