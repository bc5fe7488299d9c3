"""Enrol devices with codes and relay opaque envelopes over real WebSockets."""

from __future__ import annotations

import aiohttp

from tests.support.devices import WireDevice, b64, receive, send_envelopes
from tests.support.servers import RunningServer


async def enrolled(
    http: aiohttp.ClientSession, server: RunningServer, external_id: str
) -> WireDevice:
    device = WireDevice()
    await device.enrol(http, server.url, server.person(external_id)["code"])
    return device


async def test_two_devices_relay_an_envelope(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R001")
    assert teacher.person_id == server.person("T001")["person_id"]
    ws_teacher = await teacher.connect(http, server.ws_url)
    ws_parent = await parent.connect(http, server.ws_url)

    await send_envelopes(ws_teacher, "c1", {parent.device_id: b"\x01opaque ciphertext"})
    sent = await receive(ws_teacher)
    assert sent["type"] == "sent" and sent["client_msg_id"] == "c1"
    delivered = await receive(ws_parent)
    assert delivered["type"] == "deliver"
    assert delivered["message_id"] == sent["message_id"]
    assert delivered["sender_device"] == teacher.device_id
    assert delivered["sender_person"] == teacher.person_id
    assert delivered["ciphertext"] == b64(b"\x01opaque ciphertext")
    assert delivered["ts"] == sent["ts"]
    await ws_teacher.close()
    await ws_parent.close()


async def test_offline_device_gets_its_queue_on_connect_and_ack_removes_it(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R002")
    ws_teacher = await teacher.connect(http, server.ws_url)
    for i in range(3):
        await send_envelopes(ws_teacher, f"m{i}", {parent.device_id: bytes([i]) * 10})
        assert (await receive(ws_teacher))["type"] == "sent"

    ws_parent = await parent.connect(http, server.ws_url)
    frames = [await receive(ws_parent) for _ in range(3)]
    assert [f["ciphertext"] for f in frames] == [b64(bytes([i]) * 10) for i in range(3)]
    await ws_parent.send_json(
        {"type": "ack", "v": 1, "envelope_ids": [f["envelope_id"] for f in frames[:2]]}
    )
    # Acks are processed in order with other frames: a send after them proves they were handled.
    await send_envelopes(ws_parent, "probe", {teacher.device_id: b"x"})
    assert (await receive(ws_parent))["type"] == "sent"
    await ws_parent.close()
    assert await server.store.envelopes.count_pending(parent.device_id) == 1

    ws_parent = await parent.connect(http, server.ws_url)
    again = await receive(ws_parent)
    assert again["envelope_id"] == frames[2]["envelope_id"]
    await ws_parent.close()
    await ws_teacher.close()


async def test_resending_a_client_message_id_stores_once(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R003")
    ws = await teacher.connect(http, server.ws_url)
    await send_envelopes(ws, "same-id", {parent.device_id: b"first"})
    first = await receive(ws)
    server.clock.advance(__import__("datetime").timedelta(seconds=5))
    await send_envelopes(ws, "same-id", {parent.device_id: b"first"})
    second = await receive(ws)
    assert (first["message_id"], first["ts"]) == (second["message_id"], second["ts"])
    assert await server.store.envelopes.count_pending(parent.device_id) == 1
    await ws.close()


async def test_unknown_recipient_is_refused_and_nothing_is_stored(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R004")
    ws = await teacher.connect(http, server.ws_url)
    await send_envelopes(ws, "c9", {parent.device_id: b"a", "d_nobody": b"b"})
    error = await receive(ws)
    assert error == {
        "v": 1,
        "type": "error",
        "code": "unknown_device",
        "message": "unknown device(s): d_nobody",
        "ref": "c9",
        "retry_after": None,
    }
    assert await server.store.envelopes.count_pending(parent.device_id) == 0
    await ws.close()


async def test_a_new_connection_supersedes_the_old_one(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    first = await teacher.connect(http, server.ws_url)
    second = await teacher.connect(http, server.ws_url)
    msg = await first.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
    await second.close()
