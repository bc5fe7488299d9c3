"""The school policy over the admin API: versioned, validated, audited (issue 5)."""

from __future__ import annotations

import aiohttp

from tests.moderation_server.helpers import call, counts, online
from tests.support.servers import RunningServer

UAI = "9999999D"


async def test_policy_revisions_are_versioned_validated_and_audited(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (director, ws_d), (teacher, ws_t), (parent, ws_p) = await online(
        http, server, "D001", "T001", "R001"
    )
    url = f"{server.url}/v1/schools/{UAI}/policy"
    status, body = await call(http, "GET", url, teacher)
    assert status == 200 and body["stored"] is False and body["policy"]["version"] == 1
    assert (await call(http, "GET", url, parent))[0] == 403
    before = await counts(server)
    refusals = [
        (teacher, {"version": 2}, 403, "forbidden"),
        (director, {"version": 3}, 422, "invalid_request"),
        (director, {"version": 2, "quiet_hours": {"start": "25:00"}}, 422, "invalid_request"),
        (director, {"version": 2, "typo": True}, 422, "invalid_request"),
    ]
    for who, document, code, error in refusals:
        status, body = await call(http, "PUT", url, who, document)
        assert (status, body["error"]["code"]) == (code, error), body
    status, body = await call(http, "PUT", url, director, {"version": 2, "typo": True})
    assert body["error"]["fields"] == [
        {"field": "typo", "reason": "Extra inputs are not permitted"}
    ]
    assert await counts(server) == before
    status, body = await call(http, "PUT", url, director, {"version": 2, "pupil_peers": "never"})
    assert status == 200 and body["policy"]["pupil_peers"] == "never"
    toml = b'version = 3\nparents_reach_other_parent = true\n[quiet_hours]\nstart = "19:30"\n'
    async with http.put(
        url,
        data=toml,
        headers={
            "Authorization": f"Bearer {server.operator_token}",
            "Content-Type": "application/toml",
        },
    ) as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["policy"]["quiet_hours"]["start"] == "19:30:00"
    assert body["policy"]["pupil_peers"] == "teacher_channels"  # a revision is a whole document
    status, body = await call(http, "GET", url, director)
    assert (body["stored"], body["policy"]["version"]) == (True, 3)
    entries = await server.store.audit.entries(school=UAI, action="policy.revise")
    assert [e["details"]["version"] for e in entries] == [2, 3]
    for ws in (ws_d, ws_t, ws_p):
        await ws.close()
