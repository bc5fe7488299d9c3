"""Devices enrolled with codes exchange opaque ciphertext in conversations, over real
WebSockets: live, queued for offline devices, acknowledged, idempotent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.devices import WireDevice, b64, receive, receive_type, send_envelopes
from tests.support.servers import RunningServer, running_server


async def enrolled(
    http: aiohttp.ClientSession, server: RunningServer, external_id: str
) -> WireDevice:
    device = WireDevice()
    await device.enrol(http, server.url, server.person(external_id)["code"])
    return device


async def direct(
    http: aiohttp.ClientSession, server: RunningServer, a: WireDevice, b: WireDevice
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """``a`` connected, with a direct conversation to ``b``'s person."""
    ws = await a.connect(http, server.ws_url)
    conversation = await a.conversation(http, server.url, "direct", [b.person_id])
    event = await receive_type(ws, "event")
    assert event["event"]["action"] == "created" and event["seq"] == 1
    return ws, conversation["id"]


async def test_two_devices_relay_an_envelope(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R001")
    assert teacher.person_id == server.person("T001")["person_id"]
    ws_parent = await parent.connect(http, server.ws_url)
    ws_teacher, conversation = await direct(http, server, teacher, parent)
    created = await receive_type(ws_parent, "event")
    assert created["conversation"] == conversation

    await send_envelopes(ws_teacher, conversation, "c1", {parent.device_id: b"\x01opaque"})
    sent = await receive(ws_teacher)
    assert sent["type"] == "sent" and sent["client_msg_id"] == "c1" and sent["seq"] == 2
    delivered = await receive(ws_parent)
    assert delivered["type"] == "deliver"
    assert delivered["envelope_id"] == f"{conversation}:2"
    assert delivered["message_id"] == sent["message_id"]
    assert delivered["sender_device"] == teacher.device_id
    assert delivered["sender_person"] == teacher.person_id
    assert delivered["ciphertext"] == b64(b"\x01opaque")
    assert delivered["ts"] == sent["ts"]
    await ws_teacher.close()
    await ws_parent.close()


async def test_offline_device_catches_up_in_order_and_acks_are_cumulative(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R002")
    ws_teacher, conversation = await direct(http, server, teacher, parent)
    for i in range(5):
        await send_envelopes(ws_teacher, conversation, f"m{i}", {parent.device_id: bytes([i])})
        assert (await receive(ws_teacher))["seq"] == i + 2

    ws_parent = await parent.connect(http, server.ws_url)
    frames = [await receive(ws_parent) for _ in range(6)]
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5, 6]
    assert frames[0]["type"] == "event"
    assert [f["ciphertext"] for f in frames[1:]] == [b64(bytes([i])) for i in range(5)]
    await ws_parent.send_json({"type": "ack", "v": 1, "envelope_ids": [frames[3]["envelope_id"]]})
    # Frames are handled in order: a sync answered after the ack proves it was stored.
    await ws_parent.send_json({"type": "sync", "v": 1, "conversation": conversation, "since": 6})
    assert (await receive_type(ws_parent, "synced"))["head"] == 6
    await ws_parent.close()

    ws_parent = await parent.connect(http, server.ws_url)
    again = [await receive_type(ws_parent, "deliver") for _ in range(2)]
    assert [f["seq"] for f in again] == [5, 6]
    await ws_parent.close()
    await ws_teacher.close()


async def test_resending_a_client_message_id_stores_once(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R003")
    ws, conversation = await direct(http, server, teacher, parent)
    await send_envelopes(ws, conversation, "same-id", {parent.device_id: b"first"})
    first = await receive(ws)
    server.clock.advance(timedelta(seconds=5))
    await send_envelopes(ws, conversation, "same-id", {parent.device_id: b"first"})
    second = await receive(ws)
    keys = ("message_id", "seq", "ts")
    assert [first[k] for k in keys] == [second[k] for k in keys]
    assert (
        await server.store.messages.collection.count_documents({"conversation": conversation}) == 2
    )
    await ws.close()


async def test_refused_sends_store_nothing(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    teacher = await enrolled(http, server, "T001")
    parent = await enrolled(http, server, "R004")
    other = await enrolled(http, server, "R001")
    ws, conversation = await direct(http, server, teacher, parent)

    async def refused(conv: str, envelopes: dict[str, bytes]) -> dict[str, Any]:
        await send_envelopes(ws, conv, "c9", envelopes)
        error = await receive(ws)
        assert error["type"] == "error" and error["ref"] == "c9"
        return error

    error = await refused(conversation, {parent.device_id: b"a", "d_nobody": b"b"})
    assert (error["code"], error["message"]) == ("unknown_device", "unknown device(s): d_nobody")
    error = await refused(conversation, {other.device_id: b"a"})
    assert error["code"] == "not_a_member"
    error = await refused("c_unknown", {parent.device_id: b"a"})
    assert error["code"] == "unknown_conversation"
    assert (
        await server.store.messages.collection.count_documents({"conversation": conversation}) == 1
    )
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


async def test_catch_up_and_sync_go_through_ranges_of_seqs_a_page_at_a_time(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Pages of ``catch_up_page`` seqs (storage.messages.for_device reads bounded
    ranges): ranges holding nothing for the device are passed, nothing is missed."""
    async with running_server(database_uri, tmp_path, catch_up_page=2) as server:
        teacher = await enrolled(http, server, "T001")
        parent = await enrolled(http, server, "R002")
        ws_teacher, conversation = await direct(http, server, teacher, parent)
        for i in range(5):  # seqs 2-6, none of them for the teacher's own device
            await send_envelopes(ws_teacher, conversation, f"m{i}", {parent.device_id: bytes([i])})
            assert (await receive(ws_teacher))["seq"] == i + 2
        await ws_teacher.close()
        ws_parent = await parent.connect(http, server.ws_url)
        frames = [await receive(ws_parent) for _ in range(6)]
        assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5, 6]
        await send_envelopes(ws_parent, conversation, "reply", {teacher.device_id: b"\x07"})
        assert (await receive_type(ws_parent, "sent"))["seq"] == 7
        sync = {"type": "sync", "v": 1, "conversation": conversation, "since": 2}
        await ws_parent.send_json(sync)
        synced = [await receive(ws_parent) for _ in range(5)]
        assert [f.get("seq") for f in synced] == [3, 4, 5, 6, None]  # 7 is the parent's own
        assert synced[-1] == {"type": "synced", "v": 1, "conversation": conversation, "head": 7}
        ws_teacher = await teacher.connect(http, server.ws_url)
        caught = await receive_type(ws_teacher, "deliver")  # past three ranges with nothing
        assert caught["seq"] == 7 and caught["ciphertext"] == b64(b"\x07")
        await ws_teacher.close()
        await ws_parent.close()
