"""Sends go through moderation: quiet hours, night closure, rate limits, blocks (issue 5).

The clock is the server's ``FrozenClock``: tests move it, never sleep.
"""

from __future__ import annotations

import re
from datetime import timedelta

import aiohttp

from tests.moderation_server.helpers import (
    answer,
    call,
    counts,
    create,
    next_of,
    online,
    paris,
    refused_with,
    send,
)
from tests.support.servers import RunningServer


def set_clock(server: RunningServer, hour: int, minute: int = 0) -> None:
    """Move the frozen clock to that local time in Paris on 1 September 2037 (a Tuesday)."""
    server.clock.advance(paris(2037, 9, 1, hour, minute) - server.clock.now())


DELIVERIES = re.compile(r'^carnet_moderation_deliveries_total\{delivery="(\w+)"\} (\S+)$', re.M)


async def deliveries_counted(
    http: aiohttp.ClientSession, server: RunningServer
) -> dict[str, float]:
    """``carnet_moderation_deliveries_total`` by delivery, from ``/metrics``."""
    async with http.get(server.url + "/metrics") as r:
        text = await r.text()
    return {delivery: float(value) for delivery, value in DELIVERIES.findall(text)}


async def test_quiet_hours_deliver_silently_and_tell_the_sender(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R001")
    _, conversation = await create(http, server, parent, "direct", [teacher.person_id])
    set_clock(server, 21)
    await send(ws_p, conversation["id"], "late", {teacher.device_id: b"ciphertext"})
    sent = await answer(ws_p, "late")
    assert sent["type"] == "sent", sent
    assert sent["silent_to"] == [teacher.person_id]
    assert sent["quiet_until"] == int(paris(2037, 9, 2, 7).timestamp() * 1000)
    delivered = await next_of(ws_t, "deliver")
    assert delivered["silent"] is True
    # The teacher's answer to the parent at 21:00 is silent for the parent too.
    await send(ws_t, conversation["id"], "reply", {parent.device_id: b"ciphertext"})
    assert (await answer(ws_t, "reply"))["silent_to"] == [parent.person_id]
    set_clock(server, 7, 30)  # the next morning is not quiet
    server.clock.advance(timedelta(days=1))
    await send(ws_p, conversation["id"], "morning", {teacher.device_id: b"ciphertext"})
    sent = await answer(ws_p, "morning")
    assert sent["silent_to"] == [] and sent["quiet_until"] is None
    assert (await next_of(ws_t, "deliver"))["silent"] is False
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_the_quiet_hours_end_told_is_the_window_of_each_send(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    """Two sends a night apart reuse the sender's context (seconds apart in real
    time): the second is told the end of its own night, not of the first."""
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R001")
    _, conversation = await create(http, server, parent, "direct", [teacher.person_id])
    set_clock(server, 21)
    await send(ws_p, conversation["id"], "night1", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "night1"))["quiet_until"] == int(
        paris(2037, 9, 2, 7).timestamp() * 1000
    )
    server.clock.advance(timedelta(days=1))  # Wednesday 21:00
    await send(ws_p, conversation["id"], "night2", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "night2"))["quiet_until"] == int(
        paris(2037, 9, 3, 7).timestamp() * 1000
    )
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_a_reused_verdict_ends_when_quiet_hours_begin(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    """The gate reuses a sender's verdict within a minute (``steady_until``): a
    send one microsecond after the window opens is silent, the one before is not."""
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R001")
    _, conversation = await create(http, server, parent, "direct", [teacher.person_id])
    set_clock(server, 19, 59)
    server.clock.advance(timedelta(seconds=59.5))
    before = await deliveries_counted(http, server)
    await send(ws_p, conversation["id"], "before", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "before"))["silent_to"] == []
    assert (await next_of(ws_t, "deliver"))["silent"] is False
    server.clock.advance(timedelta(seconds=0.5))  # 20:00:00 in Paris
    await send(ws_p, conversation["id"], "after", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "after"))["silent_to"] == [teacher.person_id]
    assert (await next_of(ws_t, "deliver"))["silent"] is True
    after = await deliveries_counted(http, server)  # each send's recipient, as delivered
    assert {k: after.get(k, 0) - before.get(k, 0) for k in after} == {"notify": 1, "silent": 1}
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_rate_limit_answers_retry_after_and_stores_nothing(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R002")
    _, conversation = await create(http, server, parent, "direct", [teacher.person_id])
    capacity = 20  # parents: 20 at once, 12 per minute (docs/moderation.md, rate limits)
    for i in range(capacity):
        await send(ws_p, conversation["id"], f"m{i}", {teacher.device_id: b"x"})
        assert (await answer(ws_p, f"m{i}"))["type"] == "sent"
    before = await counts(server)
    await send(ws_p, conversation["id"], "over", {teacher.device_id: b"x"})
    error = await answer(ws_p, "over")
    assert (error["type"], error["code"], error["reason"]) == (
        "error",
        "rate_limited",
        "rate_limited",
    )
    assert error["retry_after"] == 5  # one token every 5 s, rounded up to whole seconds
    assert await counts(server) == before
    server.clock.advance(timedelta(seconds=error["retry_after"]))
    await send(ws_p, conversation["id"], "over", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "over"))["type"] == "sent"
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_a_blocked_sender_is_acknowledged_but_not_delivered(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (parent, ws_p), (director, ws_d) = await online(
        http, server, "T001", "R003", "D001"
    )
    _, direct = await create(http, server, parent, "direct", [teacher.person_id])
    blocks = f"{server.url}/v1/blocks"
    # A parent cannot block their child's teacher: they report instead.
    before = await counts(server)
    status, body = await call(http, "POST", f"{blocks}/{teacher.person_id}", parent)
    assert refused_with(status, body, "report_instead"), body
    status, body = await call(http, "POST", f"{blocks}/{parent.person_id}", parent)
    assert refused_with(status, body, "cannot_block_self"), body
    assert await counts(server) == before
    status, _ = await call(http, "POST", f"{blocks}/{parent.person_id}", teacher)
    assert status == 204
    assert (await call(http, "GET", blocks, teacher))[1] == {"blocked": [parent.person_id]}
    await send(ws_p, direct["id"], "b1", {teacher.device_id: b"x"})
    sent = await answer(ws_p, "b1")
    assert sent["type"] == "sent" and sent["silent_to"] == []  # nothing tells the sender
    stored = await server.store.db["messages"].find_one({"_id": sent["message_id"]})
    assert stored is not None and teacher.device_id not in stored["recipients"]
    assert "pairwise" not in stored or teacher.device_id not in stored["pairwise"]
    # The director is not blocked: in a group the block drops only the blocker's copy.
    _, group = await create(http, server, director, "group", [teacher.person_id, parent.person_id])
    envelopes = {teacher.device_id: b"t", director.device_id: b"d"}
    await send(ws_p, group["id"], "b2", envelopes)
    assert (await answer(ws_p, "b2"))["type"] == "sent"
    assert (await next_of(ws_d, "deliver"))["sender_person"] == parent.person_id
    status, _ = await call(http, "DELETE", f"{blocks}/{parent.person_id}", teacher)
    assert status == 204
    await send(ws_p, direct["id"], "b3", {teacher.device_id: b"x"})
    assert (await answer(ws_p, "b3"))["type"] == "sent"
    # The teacher's first message is b3 (seq 3: 1 is the creation event, 2 was dropped).
    delivered = await next_of(ws_t, "deliver")
    assert (delivered["conversation"], delivered["seq"]) == (direct["id"], 3)
    for ws in (ws_t, ws_p, ws_d):
        await ws.close()


async def test_night_closure_of_pupils_set_by_the_director(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (director, ws_d), (pupil, ws_e) = await online(
        http, server, "T001", "D001", "E001"
    )
    _, group = await create(http, server, teacher, "group", [director.person_id, pupil.person_id])
    policy = {"version": 2, "night_closure": {"enabled": True, "start": "20:30", "end": "07:00"}}
    url = f"{server.url}/v1/schools/9999999D/policy"
    status, body = await call(http, "PUT", url, director, policy)
    assert status == 200 and body["policy"]["version"] == 2, body
    set_clock(server, 21)
    envelopes = {teacher.device_id: b"t", director.device_id: b"d"}
    await send(ws_e, group["id"], "n1", envelopes)
    error = await answer(ws_e, "n1")
    assert (error["code"], error["reason"]) == ("not_allowed", "night_closure")
    await send(ws_t, group["id"], "n2", {pupil.device_id: b"p", director.device_id: b"d"})
    assert (await answer(ws_t, "n2"))["type"] == "sent"  # adults are not closed
    for ws in (ws_t, ws_d, ws_e):
        await ws.close()


async def test_a_policy_revision_applies_to_the_very_next_send(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    """The node reuses what a send read (people, policies, blocks) for the next
    sends; a revision stored through it must not wait for that to expire."""
    (teacher, ws_t), (director, ws_d), (pupil, ws_e) = await online(
        http, server, "T001", "D001", "E001"
    )
    _, group = await create(http, server, teacher, "group", [director.person_id, pupil.person_id])
    set_clock(server, 21)
    envelopes = {teacher.device_id: b"t", director.device_id: b"d"}
    await send(ws_e, group["id"], "p1", envelopes)
    assert (await answer(ws_e, "p1"))["type"] == "sent"  # no night closure yet
    policy = {"version": 2, "night_closure": {"enabled": True, "start": "20:30", "end": "07:00"}}
    url = f"{server.url}/v1/schools/9999999D/policy"
    status, body = await call(http, "PUT", url, director, policy)
    assert status == 200 and body["policy"]["version"] == 2, body
    await send(ws_e, group["id"], "p2", envelopes)
    error = await answer(ws_e, "p2")
    assert (error["code"], error["reason"]) == ("not_allowed", "night_closure")
    for ws in (ws_t, ws_d, ws_e):
        await ws.close()


async def test_the_directory_lists_only_reachable_people(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ((pupil, ws),) = await online(http, server, "E001")
    status, body = await call(http, "GET", server.url + "/v1/directory", pupil)
    assert status == 200
    names = {p["name"] for p in body["people"]}
    # Her teacher and the director; not her parents (pupils_reach_own_parents is false),
    # not other pupils (only in a teacher's channel), not other parents.
    assert names == {"Claire Durand", "Marc Lefèvre"}
    await ws.close()


async def test_quiet_hours_end_on_local_time_across_the_october_dst_change(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R004")
    _, conversation = await create(http, server, teacher, "direct", [parent.person_id])
    # Saturday 24 October 2037, 22:00 CEST: quiet all weekend, until Monday 07:00 CET
    # (clocks go back on the Sunday at 03:00 CEST; the wall-clock end is kept).
    server.clock.advance(paris(2037, 10, 24, 22) - server.clock.now())
    await send(ws_t, conversation["id"], "dst", {parent.device_id: b"x"})
    sent = await answer(ws_t, "dst")
    monday = paris(2037, 10, 26, 7)
    assert monday.utcoffset() is not None and monday.utcoffset().total_seconds() == 3600
    assert (sent["silent_to"], sent["quiet_until"]) == (
        [parent.person_id],
        int(monday.timestamp() * 1000),
    )
    for ws in (ws_t, ws_p):
        await ws.close()
