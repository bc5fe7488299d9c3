"""Art. 15 export, art. 17 erasure (checked by scanning every collection), art. 12
requests, art. 33 breach scoping, art. 30 register."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import aiohttp

from tests.rgpd.seed import Seeded, bearer
from tests.support.servers import START, RunningServer

DAY = timedelta(days=1)


async def export(carnet: RunningServer, http: aiohttp.ClientSession, token: str, pid: str) -> Any:
    async with http.get(f"{carnet.url}/v1/dpo/people/{pid}/export", headers=bearer(token)) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "application/zip"
        assert r.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built whole
        return zipfile.ZipFile(io.BytesIO(await r.read()))


async def test_export_holds_everything_about_the_person(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str, seeded: Seeded
) -> None:
    pid = seeded.person["person_id"]
    devices = {d.device_id for d in seeded.devices}
    archive = await export(carnet, http, dpo_token, pid)
    files = {
        name: json.loads(archive.read(name))
        for name in archive.namelist()
        if name.endswith(".json")
    }
    assert "README.txt" in archive.namelist()
    people = {p["_id"]: p for p in files["people.json"]}
    assert people[pid]["given_name"] == "Léa" and people[pid]["external_id"] == "E001"
    # Both parents appear as links, without their own contact details.
    links = [p for p in people.values() if p.get("relation") == "parent"]
    assert len(links) == 2 and all("email" not in p for p in links)
    assert {d["_id"] for d in files["devices.json"]} == devices
    assert {c["_id"] for c in files["conversations.json"]} == {
        seeded.conversation,
        seeded.other_conversation,
    }
    assert {m["_id"] for m in files["messages.json"]} == {"m_seedmessage001", "m_seedmessage002"}
    assert all("pairwise" not in m and "group" not in m for m in files["messages.json"])
    assert len(files["receipts.json"]) == 1 and len(files["cursors.json"]) == 1
    assert [r["_id"] for r in files["reports.json"]] == ["x_seedreport001"]
    assert len(files["enrolment_codes.json"]) == 3
    assert all("secret_hash" not in c for c in files["enrolment_codes.json"])
    assert len(files["signed_prekeys.json"]) == 1 and len(files["one_time_prekeys.json"]) == 1
    assert [r["kind"] for r in files["dpo_requests.json"]] == ["access"]
    assert "enrolment_code.issue" in {e["action"] for e in files["audit_log.json"]}
    # The export itself was recorded.
    exports = await carnet.store.audit.entries(action="person.export")
    assert len(exports) == 1


def strings_in(value: Any) -> list[str | bytes]:
    """Every string and bytes value and every key, at any depth."""
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, dict):
        return [*value.keys(), *(s for v in value.values() for s in strings_in(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []


async def test_erasure_leaves_no_identifier_in_any_collection(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str, seeded: Seeded
) -> None:
    store, pid = carnet.store, seeded.person["person_id"]
    person = await store.directory.person(pid)
    assert person is not None
    devices = [d.device_id for d in seeded.devices]
    substrings = [pid, *devices]
    exact: list[str | bytes] = [person.external_id, *seeded.identity_keys]
    requests = await store.dpo_requests.of_person(pid)
    async with http.post(
        f"{carnet.url}/v1/dpo/people/{pid}/erase",
        json={"request_id": requests[0]["_id"]},
        headers=bearer(dpo_token),
    ) as r:
        report = await r.json()
        assert r.status == 200, report
    assert report["devices"] == 2 and report["touched"]

    names = await store.db.list_collection_names()
    assert {"people", "devices", "messages", "conversations", "audit_log"} <= set(names)
    found = []
    for name in names:
        async for doc in store.db[name].find({}):
            if name == "audit_log" and doc["action"] == "person.erase":
                continue  # the record of the erasure: the one trace kept (art. 17(3)(b))
            values = strings_in(doc)
            hits = [
                v
                for v in values
                if (isinstance(v, str) and any(s in v for s in substrings)) or v in exact
            ]
            # The person's full name in one document would identify them too.
            texts = {v for v in values if isinstance(v, str)}
            if {person.given_name, person.family_name} <= texts:
                hits.append("full name")
            if hits:
                found.append((name, doc.get("_id"), hits))
    assert found == []

    # What remains is coherent: the conversation lost a member, the teacher's
    # message lost a recipient, the pupil's message stays without a sender.
    conversation = await store.db["conversations"].find_one({"_id": seeded.conversation})
    assert conversation is not None
    assert conversation["members"] == [seeded.teacher_id, seeded.parent_id]
    sent = await store.db["messages"].find_one({"_id": "m_seedmessage001"})
    assert sent is not None and sent["sender_person"] == "erased"
    # The request is kept, without the name; the erasure record names the person.
    kept = await store.dpo_requests.get(requests[0]["_id"])
    assert kept is not None and kept["person_id"] == "erased" and kept["note"] == ""
    (record,) = await store.audit.entries(action="person.erase")
    assert record["target"] == pid and record["details"]["request"] == requests[0]["_id"]
    assert (await store.audit.verify()).ok
    # The devices can no longer log in: their keys are gone.
    for device in seeded.devices:
        assert await store.enrolment.device(device.device_id) is None


async def test_erasure_dry_run_changes_nothing(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str, seeded: Seeded
) -> None:
    pid = seeded.person["person_id"]
    async with http.post(
        f"{carnet.url}/v1/dpo/people/{pid}/erase", json={"dry_run": True}, headers=bearer(dpo_token)
    ) as r:
        report = await r.json()
    assert report["dry_run"] is True and report["touched"]["messages"] == 2
    assert await carnet.store.directory.person(pid) is not None


async def test_requests_have_a_one_month_deadline_and_overdue_ones_are_listed(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str
) -> None:
    pid = carnet.person("R002")["person_id"]
    received = START - 40 * DAY
    async with http.post(
        carnet.url + "/v1/dpo/requests",
        json={"person_id": pid, "kind": "rectification", "received_at": received.isoformat()},
        headers=bearer(dpo_token),
    ) as r:
        request = await r.json()
        assert r.status == 201, request
    assert request["deadline"] == received.replace(month=received.month + 1).isoformat()

    async def overdue() -> list[str]:
        async with http.get(
            carnet.url + "/v1/dpo/requests", params={"overdue": "1"}, headers=bearer(dpo_token)
        ) as r:
            return [q["_id"] for q in (await r.json())["requests"]]

    assert await overdue() == [request["_id"]]
    async with http.patch(
        f"{carnet.url}/v1/dpo/requests/{request['_id']}",
        json={"status": "done", "outcome": "address corrected in the registry"},
        headers=bearer(dpo_token),
    ) as r:
        assert (await r.json())["status"] == "done"
    assert await overdue() == []


def test_deadline_is_a_calendar_month() -> None:
    from storage.dpo_requests import deadline

    assert deadline(START.replace(month=1, day=31)).date().isoformat() == "2037-02-28"
    assert deadline(START.replace(month=12, day=15)).date().isoformat() == "2038-01-15"


async def test_breach_scope_of_a_pupil_flags_minors(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str, seeded: Seeded
) -> None:
    period = {"since": (START - DAY).isoformat(), "until": (START + DAY).isoformat()}
    async with http.post(
        carnet.url + "/v1/dpo/breach-scope",
        json={"device_id": seeded.devices[0].device_id, **period},
        headers=bearer(dpo_token),
    ) as r:
        scope = await r.json()
        assert r.status == 200, scope
    people = {p["person_id"]: p for p in scope["people"]}
    pupil = seeded.person["person_id"]
    assert {pupil, seeded.teacher_id, seeded.parent_id} <= set(people)
    assert people[pupil]["minor"] is True and people[seeded.teacher_id]["minor"] is False
    # Classmates are reachable through the class: every pupil of 5e B is listed.
    assert scope["counts"]["minors"] == 3
    assert scope["classes"] == ["9999999D/5e B"]
    assert {c["conversation"] for c in scope["conversations"]} == {
        seeded.conversation,
        seeded.other_conversation,
    }
    # Before the conversations existed, none was reachable.
    async with http.post(
        carnet.url + "/v1/dpo/breach-scope",
        json={"person_id": pupil, "since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00Z"},
        headers=bearer(dpo_token),
    ) as r:
        assert (await r.json())["conversations"] == []


async def test_register_reflects_the_live_settings(
    database_uri: str, tmp_path: Any, http: aiohttp.ClientSession
) -> None:
    from server.admin_actions import create_api_token
    from tests.support.servers import running_server

    async with running_server(
        database_uri, tmp_path, retention_left_days=45, retention_scheduler=False
    ) as carnet:
        token, _ = await create_api_token(carnet.store, "dpo", None, "dpo", carnet.clock.now())
        async with http.get(carnet.url + "/v1/dpo/register", headers=bearer(token)) as r:
            register = await r.json()
        rows = {row["category"]: row for row in register["retention"]}
        assert rows["people_left"]["days"] == 45
        assert "arrêté" in rows["people_left"]["source"].lower()
        assert rows["undelivered_ciphertext"]["days"] == 30
        assert register["data_subjects"][0].startswith("pupils (minors)")
        async with http.get(
            carnet.url + "/v1/dpo/register.html",
            params={"school": "9999999D"},
            headers=bearer(token),
        ) as r:
            page = await r.text()
            assert r.content_type == "text/html"
        assert "Collège de démonstration Jean Moulin" in page
        assert "erased 45 days after leaving" in page
