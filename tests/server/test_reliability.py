"""Delivery guarantees against real processes: kill -9 of Carnet and of its
database, SIGTERM drain with sends in flight, two nodes on one database with
failover, and a stalled reader that cannot grow server memory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

import aiohttp

from storage.embedded import EmbeddedDatabase
from tests.server.test_process import database_pids, wait_gone
from tests.support.devices import WireDevice, b64, receive, receive_type, send_envelopes
from tests.support.policy import relax_rate_limits
from tests.support.servers import RunningServer, running_server, start_server_process


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + "/v1/ws"


def demo_code(data: Path, external_id: str) -> str:
    people = json.loads((data / "demo.json").read_text())["people"]
    code: str = next(p["code"] for p in people if p["external_id"] == external_id)
    return code


async def pair(
    http: aiohttp.ClientSession, url: str, data: Path
) -> tuple[WireDevice, WireDevice, aiohttp.ClientWebSocketResponse, str]:
    teacher, parent = WireDevice(), WireDevice()
    await teacher.enrol(http, url, demo_code(data, "T001"))
    await parent.enrol(http, url, demo_code(data, "R001"))
    ws = await teacher.connect(http, ws_url(url))
    conversation = (await teacher.conversation(http, url, "direct", [parent.person_id]))["id"]
    await receive_type(ws, "event")
    return teacher, parent, ws, conversation


async def test_acknowledged_message_survives_kill_9_of_carnet_and_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server_process(data, "--demo")
    db_pids = database_pids(data)
    async with aiohttp.ClientSession() as http:
        teacher, parent, ws, conversation = await pair(http, first.url, data)
        await send_envelopes(ws, conversation, "precious", {parent.device_id: b"survives"})
        sent = await receive_type(ws, "sent")
        # The moment `sent` arrives, both processes die without warning.
        os.kill(first.process.pid, signal.SIGKILL)
        for pid in db_pids:
            os.kill(pid, signal.SIGKILL)
        first.process.wait(10)
        assert wait_gone(db_pids)

        second = start_server_process(data)
        try:
            ws_parent = await parent.connect(http, ws_url(second.url))
            frames = [await receive(ws_parent) for _ in range(2)]
            assert frames[1]["message_id"] == sent["message_id"]
            assert frames[1]["ciphertext"] == b64(b"survives")
            await ws_parent.close()
        finally:
            assert second.stop() == 0


async def test_sigterm_finishes_in_flight_writes_and_never_acknowledges_a_lost_one(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server_process(data, "--demo")
    acknowledged: list[str] = []
    async with aiohttp.ClientSession() as http:
        token = json.loads((data / "demo.json").read_text())["operator_token"]
        await relax_rate_limits(http, server.url, token)
        teacher, parent, ws, conversation = await pair(http, server.url, data)
        for i in range(200):
            await send_envelopes(ws, conversation, f"burst-{i}", {parent.device_id: b"x" * 64})
        acknowledged.append((await receive_type(ws, "sent"))["message_id"])
        server.process.send_signal(signal.SIGTERM)
        while True:
            msg = await ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame["type"] == "sent":
                acknowledged.append(frame["message_id"])
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
        assert server.process.wait(30) == 0

        again = start_server_process(data)
        try:
            ws_parent = await parent.connect(http, ws_url(again.url))
            received: set[str] = set()
            while True:
                frame = await receive(ws_parent)
                if frame["type"] == "deliver":
                    received.add(frame["message_id"])
                if set(acknowledged) <= received:
                    break
            await ws_parent.close()
        finally:
            assert again.stop() == 0
    assert acknowledged, "no send was acknowledged before the drain"


async def test_two_nodes_deliver_across_and_survive_a_node_kill(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "shared-db")
    uri = await database.start()
    env = {"CARNET_MONGODB_URI": uri, "CARNET_DB_NAME": "twonodes"}
    node_a = start_server_process(tmp_path / "a", "--demo", env=env)
    node_b = start_server_process(tmp_path / "b", env=env)
    try:
        async with aiohttp.ClientSession() as http:
            teacher, parent, ws_a, conversation = await pair(http, node_a.url, tmp_path / "a")
            ws_b = await parent.connect(http, ws_url(node_b.url))
            await receive_type(ws_b, "event")
            for i in range(20):
                await send_envelopes(ws_a, conversation, f"x{i}", {parent.device_id: bytes([i])})
            delivered = [await receive_type(ws_b, "deliver") for _ in range(20)]
            assert [f["ciphertext"] for f in delivered] == [b64(bytes([i])) for i in range(20)]
            await ws_b.send_json(
                {"type": "ack", "v": 1, "envelope_ids": [delivered[-1]["envelope_id"]]}
            )

            # Node A dies; its device reconnects to node B and carries on.
            node_a.stop(signal.SIGKILL)
            ws_a2 = await teacher.connect(http, ws_url(node_b.url))
            for i in range(20, 25):
                await send_envelopes(ws_a2, conversation, f"x{i}", {parent.device_id: bytes([i])})
                await receive_type(ws_a2, "sent")
            later = [await receive_type(ws_b, "deliver") for _ in range(5)]
            last = delivered[-1]["seq"]
            assert [f["seq"] for f in later] == list(range(last + 1, last + 6))
            assert [f["ciphertext"] for f in later] == [b64(bytes([i])) for i in range(20, 25)]
            seqs = [f["seq"] for f in delivered + later]
            assert seqs == sorted(seqs) and len(set(seqs)) == 25
            await ws_a2.close()
            await ws_b.close()
    finally:
        node_b.stop()
        if node_a.process.poll() is None:
            node_a.stop()
        await database.stop()


async def test_a_stalled_reader_is_cut_off_and_others_carry_on(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with running_server(database_uri, tmp_path, outbound_queue_bytes=64 * 1024) as server:
        await stalled_reader(server, http)


async def stalled_reader(server: RunningServer, http: aiohttp.ClientSession) -> None:
    devices = []
    for ext in ("T001", "R001", "R002"):
        d = WireDevice()
        await d.enrol(http, server.url, server.person(ext)["code"])
        devices.append(d)
    teacher, stalled, healthy = devices
    await relax_rate_limits(http, server.url, server.operator_token)
    ws_t = await teacher.connect(http, server.ws_url)
    group = await teacher.conversation(
        http, server.url, "group", [stalled.person_id, healthy.person_id]
    )
    ws_h = await healthy.connect(http, server.ws_url)
    # The stalled reader's socket: a tiny receive buffer and nobody reading it.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as stalled_http:
        ws_s = await stalled.connect(stalled_http, server.ws_url, max_msg_size=0)
        sock = ws_s.get_extra_info("socket")
        transport = ws_s._response.connection.transport  # noqa: SLF001 - pause reading
        assert transport is not None and sock is not None
        # No kernel autotuning (tcp_rmem may allow 32 MB here), and nobody reading.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        transport.pause_reading()
        payload = b"\xab" * 60_000
        targets = [stalled.device_id, healthy.device_id]
        closed_at = None
        for i in range(300):  # bounded: ~24 MB at most
            await ws_t.send_json({
                "type": "send", "v": 1, "client_msg_id": f"big-{i}", "conversation": group["id"],
                "group": {"ciphertext": b64(payload), "device_ids": targets},
            })  # fmt: skip
            await receive_type(ws_t, "sent")
            frame = await receive_type(ws_h, "deliver")
            assert frame["seq"] == i + 2  # the healthy member is not slowed down
            if server.app and stalled.device_id not in _connected(server):
                closed_at = i
                break
        # The cut-off can trail the last send: a close frame that cannot get through
        # is given CLOSE_WAIT seconds before the socket is dropped. Bounded wait.
        for _ in range(100):
            if closed_at is not None or stalled.device_id not in _connected(server):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the stalled reader was never cut off")
        # The server sent 4002 if the close frame could get through, else dropped the
        # socket (docs/protocol.md, "Close codes"); either way it holds nothing for it.
    # It catches up from storage on reconnect.
    ws_s2 = await stalled.connect(http, server.ws_url)
    first = await receive(ws_s2)
    assert first["type"] == "event" and first["seq"] == 1, first
    for ws in (ws_t, ws_h, ws_s2):
        await ws.close()


def _connected(server: RunningServer) -> set[str]:
    from server.state import HUB

    return {c.device_id for c in server.app[HUB].connections()}
