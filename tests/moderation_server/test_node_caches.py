"""A block made on one node applies on the other long before its caches expire.

Two Carnet nodes share one database. Node B caches who blocked a sender for
30 s (``server.moderation_gate.CACHE_SECONDS``); the change stream on
``blocks`` makes it forget at once (``server.change_feed``). The polls are
bounded at 10 s, a third of that: a node that learnt of blocks only by expiry
fails them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp

from server.moderation_gate import CACHE_SECONDS
from tests.moderation_server.helpers import answer, call, create, online, send
from tests.support.policy import relax_rate_limits
from tests.support.servers import RunningServer, two_nodes

POLLS = 100
POLL_SECONDS = 0.1


async def test_a_block_and_its_lifting_on_node_a_apply_to_sends_on_node_b(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    assert POLLS * POLL_SECONDS < CACHE_SECONDS / 2
    async with two_nodes(database_uri, tmp_path) as (node_a, node_b):
        await _block_across(node_a, node_b, http)


async def _block_across(a: RunningServer, b: RunningServer, http: aiohttp.ClientSession) -> None:
    await relax_rate_limits(http, b.url, b.operator_token)  # the polls send many
    (teacher, ws_t), (parent, ws_p_a) = await online(http, a, "T001", "R003")
    ws_p = await parent.connect(http, b.ws_url)  # the parent now sends through node B
    conversation = (await create(http, a, parent, "direct", [teacher.person_id]))[1]["id"]
    to_teacher = {teacher.device_id: b"x"}

    async def teacher_gets_it(want: bool) -> None:
        """Send through B until the stored message has the teacher among its
        recipients (``want``) or not; bounded."""
        for attempt in range(POLLS):
            client_id = f"c-{attempt}-{uuid.uuid4().hex[:6]}"
            await send(ws_p, conversation, client_id, to_teacher)
            sent = await answer(ws_p, client_id)
            assert sent["type"] == "sent", sent  # a block never tells the sender
            stored = await b.store.db["messages"].find_one({"_id": sent["message_id"]})
            assert stored is not None
            if (teacher.device_id in stored["recipients"]) == want:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise AssertionError(f"node B never {'delivered to' if want else 'dropped'} the teacher")

    await teacher_gets_it(True)  # node B has read (and cached) who blocked the parent
    blocks = f"{a.url}/v1/blocks/{parent.person_id}"
    assert (await call(http, "POST", blocks, teacher))[0] == 204
    await teacher_gets_it(False)
    assert (await call(http, "DELETE", blocks, teacher))[0] == 204
    await teacher_gets_it(True)
    for ws in (ws_t, ws_p_a, ws_p):
        await ws.close()
