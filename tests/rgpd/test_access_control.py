"""Every DPO endpoint: 401 without a token, 403 with an operator token, 403 with a DPO of
another school; the operator's "leave" call refuses a DPO token."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.rgpd.seed import Seeded, bearer
from tests.support.servers import RunningServer

Call = tuple[str, str, dict[str, Any] | None]


def dpo_calls(seeded: Seeded, request_id: str, hold_id: str) -> list[Call]:
    pid = seeded.person["person_id"]
    period = {"since": "2037-01-01T00:00:00+00:00", "until": "2038-01-01T00:00:00+00:00"}
    return [
        ("GET", "/v1/dpo/register?school=9999999D", None),
        ("GET", "/v1/dpo/register.html?school=9999999D", None),
        ("GET", f"/v1/dpo/people/{pid}/export", None),
        ("POST", f"/v1/dpo/people/{pid}/erase", {"dry_run": True}),
        ("POST", "/v1/dpo/requests", {"person_id": pid, "kind": "access"}),
        ("GET", "/v1/dpo/requests?school=9999999D", None),
        ("PATCH", f"/v1/dpo/requests/{request_id}", {"status": "done"}),
        (
            "POST",
            "/v1/dpo/holds",
            {"kind": "person", "subject": pid, "reason": "court", "until": period["until"]},
        ),
        ("GET", "/v1/dpo/holds?school=9999999D", None),
        ("DELETE", f"/v1/dpo/holds/{hold_id}", None),
        ("POST", "/v1/dpo/breach-scope", {"person_id": pid, **period}),
        ("POST", "/v1/dpo/breach-scope", {"school": "9999999D", **period}),
        ("GET", "/v1/dpo/retention/dry-run?school=9999999D", None),
        ("GET", "/v1/dpo/audit?school=9999999D", None),
        ("GET", "/v1/dpo/audit/verify?school=9999999D", None),
    ]


async def call(
    http: aiohttp.ClientSession, url: str, c: Call, token: str | None
) -> tuple[int, str]:
    method, path, body = c
    headers = bearer(token) if token else {}
    async with http.request(method, url + path, json=body, headers=headers) as r:
        return r.status, (await r.json())["error"]["code"] if r.status >= 400 else ""


@pytest.mark.parametrize("who", ["nobody", "operator", "other_school_dpo"])
async def test_every_dpo_endpoint_refuses_the_wrong_caller(
    carnet: RunningServer,
    http: aiohttp.ClientSession,
    seeded: Seeded,
    dpo_token: str,
    other_dpo_token: str,
    who: str,
) -> None:
    now = carnet.clock.now()
    pid = seeded.person["person_id"]
    request = await carnet.store.dpo_requests.listing("9999999D", now)
    from storage.legal_holds import HoldKind

    hold = await carnet.store.holds.place(
        HoldKind.PERSON, pid, "9999999D", "test", now.replace(year=now.year + 4), "dpo:x", now
    )
    token = {"nobody": None, "operator": carnet.operator_token}.get(who, other_dpo_token)
    expected = (401, "unauthorized") if who == "nobody" else (403, "forbidden")
    calls = dpo_calls(seeded, request[0]["_id"], hold["_id"])
    for c in calls:
        assert await call(http, carnet.url, c, token) == expected, c
    # Nothing was done on the callers' behalf: the person, hold and request are intact.
    assert await carnet.store.directory.person(pid) is not None
    assert await carnet.store.holds.held([pid], now) == {pid}
    assert (await carnet.store.dpo_requests.get(request[0]["_id"]) or {})["status"] == "open"


async def test_the_right_dpo_gets_through(
    carnet: RunningServer, http: aiohttp.ClientSession, seeded: Seeded, dpo_token: str
) -> None:
    now = carnet.clock.now()
    request = await carnet.store.dpo_requests.listing("9999999D", now)
    calls = dpo_calls(seeded, request[0]["_id"], "h_doesnotexist")
    statuses = {c[1]: (await call(http, carnet.url, c, dpo_token))[0] for c in calls}
    assert statuses.pop("/v1/dpo/holds/h_doesnotexist") == 404
    assert set(statuses.values()) <= {200, 201}, statuses


async def test_leave_is_an_operator_call(
    carnet: RunningServer, http: aiohttp.ClientSession, dpo_token: str
) -> None:
    pid = carnet.person("E002")["person_id"]
    path = f"{carnet.url}/v1/admin/people/{pid}/leave"
    async with http.post(path, headers=bearer(dpo_token)) as r:
        assert r.status == 403
    async with http.post(path, headers=bearer(carnet.operator_token)) as r:
        assert r.status == 200
        assert (await r.json())["erase_after_days"] == 90
