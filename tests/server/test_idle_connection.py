"""An idle authenticated connection keeps no task of its own (issue 9: 10,000
idle connections per node, docs/architecture.md "Per connection"): the catch-up
ends, the writer ends when the outbox is empty, nothing else waits; a send or a
delivery starts what it needs again."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.server.test_relay import direct, enrolled
from tests.support.devices import receive, receive_type, send_envelopes
from tests.support.servers import RunningServer


def connection_tasks() -> list[str]:
    """Tasks running a ``DeviceConnection`` coroutine (its handler task runs aiohttp's)."""
    names = (getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks())
    return [n for n in names if n.startswith("DeviceConnection.")]


async def until_idle(timeout: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while connection_tasks():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"still running: {connection_tasks()}") from None


async def test_idle_connections_keep_no_task_and_wake_for_a_send(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R001")
    ws_parent = await parent.connect(http, server.ws_url)
    ws_teacher, conversation = await direct(http, server, teacher, parent)
    await receive_type(ws_parent, "event")
    await until_idle()

    await send_envelopes(ws_teacher, conversation, "c1", {parent.device_id: b"\x01"})
    assert (await receive(ws_teacher))["type"] == "sent"
    assert (await receive(ws_parent))["type"] == "deliver"
    await until_idle()

    await send_envelopes(ws_teacher, conversation, "c2", {parent.device_id: b"\x02"})
    sent, delivered = await receive(ws_teacher), await receive(ws_parent)
    assert (sent["type"], sent["seq"]) == ("sent", delivered["seq"])
    await ws_teacher.close()
    await ws_parent.close()
