"""Acknowledgements are written in batches (``server.receipts``): what they promise.

- written at the next flush: the cursor and the delivered receipt;
- a device removed before that flush (a person erased, RGPD art. 17) leaves
  neither behind: the flush writes only for devices that still exist.
"""

from __future__ import annotations

import aiohttp

from server.admin_actions import remove_person
from tests.server.test_conversations import online
from tests.support.devices import receive_type, send_envelopes
from tests.support.servers import RunningServer


async def test_a_flush_writes_cursors_and_receipts_of_live_devices_only(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (p, ws_p), (q, ws_q) = await online(http, server, "T001", "R001", "R002")
    kept = (await t.conversation(http, server.url, "direct", [p.person_id]))["id"]
    gone = (await t.conversation(http, server.url, "direct", [q.person_id]))["id"]
    await send_envelopes(ws_t, kept, "m1", {p.device_id: b"x"})
    await send_envelopes(ws_t, gone, "m2", {q.device_id: b"y"})
    for ws, device, conversation in ((ws_p, p, kept), (ws_q, q, gone)):
        frame = await receive_type(ws, "deliver")
        assert frame["conversation"] == conversation
        await ws.send_json({"type": "ack", "v": 1, "envelope_ids": [frame["envelope_id"]]})
        assert (await receive_type(ws_t, "receipt"))["person_id"] == device.person_id
    # Told at once, not written yet; then R002 is erased before the flush.
    db = server.store.db
    assert await db["cursors"].count_documents({}) == 0
    await remove_person(server.store, q.person_id)
    await server.write_acks()
    assert await server.store.cursors.of_device(p.device_id) == {kept: 2}
    assert await db["cursors"].count_documents({"device_id": q.device_id}) == 0
    assert await db["receipts"].count_documents({"person_id": p.person_id}) == 1
    assert await db["receipts"].count_documents({"person_id": q.person_id}) == 0
    for ws in (ws_t, ws_p, ws_q):
        await ws.close()
