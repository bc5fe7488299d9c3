"""The operator's admin API: tokens, all-or-nothing directory imports, codes, removal."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import aiohttp

from server.admin_actions import create_api_token
from tests.support.devices import WireDevice, receive_type, send_envelopes
from tests.support.servers import RunningServer

GOOD_CSV = """\
uai,school_name,timezone,external_id,role,given_name,family_name,email,classes,children
0750001A,Lycée Victor Hugo,Europe/Paris,P1,teacher,Anne,Roy,anne@lvh.example,2nde 3,
0750001A,,,E1,pupil,Jules,Dumas,,2nde 3,
0750001A,,,R1,parent,Eva,Dumas,eva@home.example,,E1
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_csv(
    http: aiohttp.ClientSession, server: RunningServer, text: str, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        server.url + "/v1/admin/directory/import",
        data=text.encode(),
        headers={**bearer(token or server.operator_token), "Content-Type": "text/csv"},
    ) as r:
        return r.status, await r.json()


async def test_csv_import_creates_people_and_links(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, body = await post_csv(http, server, GOOD_CSV)
    assert status == 200, body
    assert body == {"schools": 1, "classes": 1, "people_created": 3, "people_updated": 0}
    parent = await server.store.directory.person_by_external_id("0750001A", "R1")
    pupil = await server.store.directory.person_by_external_id("0750001A", "E1")
    assert parent is not None and pupil is not None
    assert parent.children == (pupil.id,) and pupil.classes == ("0750001A/2nde 3",)
    # Importing the same file again updates, it does not duplicate.
    status, body = await post_csv(http, server, GOOD_CSV)
    assert (status, body["people_created"], body["people_updated"]) == (200, 0, 3)


async def test_a_bad_file_imports_nothing_and_names_each_line(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    bad = (
        GOOD_CSV
        + "0750001A,,,E2,wizard,Merlin,X,,,\n"
        + "0750001A,,,P1,teacher,Dup,Licate,,,\n"
        + "0750001A,,,R2,parent,A,B,not-an-email,,\n"
    )
    status, body = await post_csv(http, server, bad)
    assert status == 422 and body["error"]["code"] == "invalid_request"
    problems = {p["line"]: p["reason"] for p in body["error"]["problems"]}
    assert set(problems) == {5, 6, 7}
    assert "role" in problems[5] and "already on line 2" in problems[6] and "email" in problems[7]
    assert await server.store.directory.school("0750001A") is None
    assert await server.store.directory.people_of_school("0750001A") == []


async def test_an_unknown_child_rolls_back_the_whole_import(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    bad = GOOD_CSV + "0750001A,,,R9,parent,Zoé,Martin,,,E404\n"
    status, body = await post_csv(http, server, bad)
    assert status == 422
    assert body["error"]["problems"] == [
        {"line": 5, "reason": "child E404 is not a pupil of 0750001A"}
    ]
    # The transaction was aborted after the people were upserted: nothing stays.
    assert await server.store.directory.school("0750001A") is None
    assert await server.store.directory.people_of_school("0750001A") == []


async def test_unknown_school_without_a_name_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, body = await post_csv(
        http, server, "uai,external_id,role,given_name,family_name\n0750002B,X1,staff,A,B\n"
    )
    assert status == 422 and body["error"]["problems"][0]["line"] == 2


async def test_header_problems_are_reported_on_line_1(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, body = await post_csv(http, server, "uai;external_id;role;nickname\n")
    reasons = [p["reason"] for p in body["error"]["problems"]]
    assert (
        status == 422
        and "missing column given_name" in reasons
        and "unknown column 'nickname'" in reasons
    )


async def test_tokens_are_checked(server: RunningServer, http: aiohttp.ClientSession) -> None:
    url = server.url + "/v1/admin/schools/9999999D/people"
    async with http.get(url) as r:
        assert r.status == 401
    async with http.get(url, headers=bearer("carnet_operator_guess")) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    dpo, _ = await create_api_token(server.store, "dpo", None, "test", server.clock.now())
    async with http.get(url, headers=bearer(dpo)) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    scoped, _ = await create_api_token(
        server.store, "operator", "0750001A", "test", server.clock.now()
    )
    async with http.get(url, headers=bearer(scoped)) as r:
        assert r.status == 403
    status, _ = await post_csv(http, server, GOOD_CSV, token=scoped)
    assert status == 200
    async with http.get(url, headers=bearer(server.operator_token)) as r:
        assert r.status == 200 and len((await r.json())["people"]) == 9


async def test_codes_are_issued_and_people_removed(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    person_id = server.person("R004")["person_id"]
    async with http.post(
        f"{server.url}/v1/admin/people/{person_id}/enrolment-codes",
        headers=bearer(server.operator_token),
    ) as r:
        assert r.status == 201
        body = await r.json()
    assert body["expires_at"].startswith(
        (server.clock.now() + timedelta(days=14)).date().isoformat()
    )
    device = WireDevice()
    await device.enrol(http, server.url, body["code"])
    teacher = WireDevice()
    await teacher.enrol(http, server.url, server.person("T001")["code"])
    ws = await teacher.connect(http, server.ws_url)
    conversation = await teacher.conversation(http, server.url, "direct", [person_id])
    await send_envelopes(ws, conversation["id"], "x", {device.device_id: b"ciphertext"})
    assert (await receive_type(ws, "sent"))["seq"] == 2

    async with http.delete(
        f"{server.url}/v1/admin/people/{person_id}", headers=bearer(server.operator_token)
    ) as r:
        assert r.status == 204
    removed = await receive_type(ws, "event")  # the others rotate their sender keys
    assert removed["event"]["action"] == "removed" and removed["event"]["persons"] == [person_id]
    await ws.close()
    assert await server.store.directory.person(person_id) is None
    assert await server.store.enrolment.device(device.device_id) is None
    messages = server.store.messages.collection
    assert await messages.count_documents({"recipients": device.device_id}) == 0
    assert await messages.count_documents({f"pairwise.{device.device_id}": {"$exists": 1}}) == 0
    stored = await server.store.conversations.get(conversation["id"])
    assert stored is not None and person_id not in stored.members
    parent_link = await server.store.directory.person_by_external_id("9999999D", "E003")
    assert parent_link is not None
    async with http.delete(
        f"{server.url}/v1/admin/people/{person_id}", headers=bearer(server.operator_token)
    ) as r:
        assert r.status == 404


async def test_unknown_routes_and_bad_json_get_documented_errors(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/v1/nothing") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    async with http.post(server.url + "/v1/enrol", data=b"{not json") as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_request"
    big = io.BytesIO(b"x" * (server.settings.max_request_bytes + 1))
    async with http.post(server.url + "/v1/enrol", data=big) as r:
        assert r.status == 413


async def test_health_ready_and_metrics(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/healthz") as r:
        assert r.status == 200
    async with http.get(server.url + "/readyz") as r:
        assert r.status == 200
    await http.post(server.url + "/v1/enrol", json={"code": "nope"})
    async with http.get(server.url + "/metrics") as r:
        text = await r.text()
    assert "carnet_connected_devices 0.0" in text
    assert 'carnet_errors_total{code="invalid_request"} 1.0' in text
    assert "carnet_message_store_seconds_bucket" in text
