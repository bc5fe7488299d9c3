"""Conversations: kinds, membership events, order under concurrency, receipts,
signed acknowledgements, attachments, sync and expiry signals."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from crypto.encoding import b64url_decode
from protocol import acknowledgement_message
from server.services import SERVICES
from tests.support.devices import WireDevice, b64, receive, receive_type, send_envelopes
from tests.support.policy import relax_rate_limits
from tests.support.servers import RunningServer, running_server


async def online(
    http: aiohttp.ClientSession, server: RunningServer, *external_ids: str
) -> list[tuple[WireDevice, aiohttp.ClientWebSocketResponse]]:
    out = []
    for ext in external_ids:
        device = WireDevice()
        await device.enrol(http, server.url, server.person(ext)["code"])
        out.append((device, await device.connect(http, server.ws_url)))
    return out


def auth(device: WireDevice) -> dict[str, str]:
    return {"Authorization": f"Bearer {device.session_token}"}


async def test_direct_conversation_is_unique_per_pair(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (teacher, ws_t), (parent, ws_p) = await online(http, server, "T001", "R001")
    first = await teacher.conversation(http, server.url, "direct", [parent.person_id])
    again = await parent.conversation(http, server.url, "direct", [teacher.person_id])
    assert first["id"] == again["id"] and first["kind"] == "direct"
    async with http.get(server.url + "/v1/conversations", headers=auth(parent)) as r:
        listed = (await r.json())["conversations"]
    assert [(c["id"], c["unread"]) for c in listed] == [(first["id"], 1)]
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_class_channel_follows_the_directory(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    ((teacher, ws),) = await online(http, server, "T001")
    director = server.person("D001")["person_id"]  # the second adult (docs/moderation.md)
    channel = await teacher.conversation(
        http, server.url, "class", [director], class_id="9999999D/5e B", title="5e B"
    )
    names = {p["person_id"]: p["external_id"] for p in server.demo["people"]}
    assert sorted(names[m] for m in channel["members"]) == [
        "D001", "E001", "E002", "E003", "R001", "R002", "R003", "R004", "T001",
    ]  # fmt: skip
    assert (await receive_type(ws, "event"))["event"]["action"] == "created"
    # A new pupil and parent arrive through a directory import: the channel follows.
    csv = (
        "uai,external_id,role,given_name,family_name,classes,children\n"
        "9999999D,E004,pupil,Noé,Lambert,5e B,\n"
        "9999999D,R005,parent,Alice,Lambert,,E004\n"
    )
    async with http.post(
        server.url + "/v1/admin/directory/import",
        data=csv.encode(),
        headers={"Authorization": f"Bearer {server.operator_token}"},
    ) as r:
        assert r.status == 200, await r.text()
    synced = await receive_type(ws, "event")
    assert synced["event"]["action"] == "synced" and synced["seq"] == 2
    assert len(synced["event"]["members"]) == 11 and len(synced["event"]["persons"]) == 2
    await ws.close()


async def test_membership_changes_are_sequenced_events_for_everyone_concerned(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (a, ws_a), (b, ws_b) = await online(http, server, "T001", "R001", "R002")
    group = await t.conversation(http, server.url, "group", [a.person_id], title="Sortie")
    url = f"{server.url}/v1/conversations/{group['id']}/members"
    async with http.post(url, json={"person_id": b.person_id}, headers=auth(t)) as r:
        assert r.status == 200
    async with http.post(url, json={"person_id": t.person_id}, headers=auth(a)) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "not_allowed"
    async with http.delete(f"{url}/{a.person_id}", headers=auth(t)) as r:
        assert r.status == 204
    async with http.delete(f"{url}/{b.person_id}", headers=auth(b)) as r:
        assert r.status == 204
    events_t = [(await receive_type(ws_t, "event"))["event"]["action"] for _ in range(4)]
    assert events_t == ["created", "added", "removed", "left"]
    events_a = [(await receive_type(ws_a, "event"))["event"]["action"] for _ in range(3)]
    assert events_a == ["created", "added", "removed"]  # told of its own removal, then nothing
    events_b = [(await receive_type(ws_b, "event")) for _ in range(3)]
    assert [e["event"]["action"] for e in events_b] == ["added", "removed", "left"]
    assert [e["seq"] for e in events_b] == [2, 3, 4]
    for ws in (ws_t, ws_a, ws_b):
        await ws.close()


async def test_announcements_are_one_way_and_acknowledged_with_signatures(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (p1, ws_1), (p2, ws_2) = await online(http, server, "T001", "R001", "R003")
    note = await t.conversation(
        http, server.url, "announcement", [p1.person_id, p2.person_id],
        title="Mot à signer", acknowledge=True,
    )  # fmt: skip
    conversation = note["id"]
    await send_envelopes(ws_t, conversation, "a1", {p1.device_id: b"x", p2.device_id: b"y"})
    sent = await receive_type(ws_t, "sent")
    await send_envelopes(ws_1, conversation, "reply", {t.device_id: b"no"})
    refused = await receive_type(ws_1, "error")
    assert refused["code"] == "not_allowed"

    url = f"{server.url}/v1/conversations/{conversation}/acknowledgements"
    message = acknowledgement_message(conversation, sent["seq"], sent["message_id"], p1.person_id)
    signature = p1.key.sign(message).signature
    async with http.post(
        url, json={"seq": sent["seq"], "signature": b64(signature)}, headers=auth(p1)
    ) as r:
        assert r.status == 201
    async with http.post(
        url, json={"seq": sent["seq"], "signature": b64(signature)}, headers=auth(p1)
    ) as r:
        assert r.status == 200 and (await r.json())["new"] is False
    forged = p2.key.sign(message).signature  # p2 signing p1's statement
    async with http.post(
        url, json={"seq": sent["seq"], "signature": b64(forged)}, headers=auth(p2)
    ) as r:
        assert r.status == 422
    async with http.get(url, params={"seq": sent["seq"]}, headers=auth(t)) as r:
        body = await r.json()
    assert [a["person_id"] for a in body["acknowledged"]] == [p1.person_id]
    assert body["acknowledged"][0]["device_id"] == p1.device_id
    assert body["pending"] == [p2.person_id]
    async with http.get(url, params={"seq": sent["seq"]}, headers=auth(p2)) as r:
        assert r.status == 403
    for ws in (ws_t, ws_1, ws_2):
        await ws.close()


async def test_many_concurrent_senders_arrive_in_seq_order(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    await relax_rate_limits(http, server.url, server.operator_token)
    (t, ws_t), (a, ws_a), (b, ws_b), (reader, ws_r) = await online(
        http, server, "T001", "R001", "R002", "D001"
    )
    group = await t.conversation(
        http, server.url, "group", [a.person_id, b.person_id, reader.person_id]
    )
    conversation = group["id"]
    devices = {d.device_id for d in (t, a, b, reader)}
    count = 40

    async def burst(device: WireDevice, ws: aiohttp.ClientWebSocketResponse) -> None:
        others = sorted(devices - {device.device_id})
        for i in range(count):
            await ws.send_json({
                "type": "send", "v": 1, "client_msg_id": f"{device.device_id[:6]}-{i}",
                "conversation": conversation,
                "group": {"ciphertext": b64(f"{device.device_id}:{i}".encode()),
                          "device_ids": others},
            })  # fmt: skip

    await asyncio.gather(burst(t, ws_t), burst(a, ws_a), burst(b, ws_b))
    seqs: list[int] = []
    per_sender: dict[str, list[int]] = {t.device_id: [], a.device_id: [], b.device_id: []}
    while len(seqs) < 3 * count:
        frame = await receive(ws_r)
        if frame["type"] == "deliver":
            seqs.append(frame["seq"])
            sender, index = b64url_decode(frame["ciphertext"]).decode().split(":")
            assert sender == frame["sender_device"]
            per_sender[sender].append(int(index))
    # Every message once, in seq order; each sender's messages in the order it sent them.
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(order == list(range(count)) for order in per_sender.values())
    for ws in (ws_t, ws_a, ws_b, ws_r):
        await ws.close()


async def test_receipts_follow_the_school_settings(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (p, ws_p) = await online(http, server, "T001", "R001")
    direct = await t.conversation(http, server.url, "direct", [p.person_id])
    conversation = direct["id"]
    await send_envelopes(ws_t, conversation, "m1", {p.device_id: b"x"})
    await receive_type(ws_p, "deliver")
    await ws_p.send_json({"type": "ack", "v": 1, "envelope_ids": [f"{conversation}:2"]})
    delivered = await receive_type(ws_t, "receipt")
    assert (delivered["kind"], delivered["seq"], delivered["person_id"]) == (
        "delivered",
        2,
        p.person_id,
    )
    await ws_p.send_json({"type": "read", "v": 1, "conversation": conversation, "seq": 2})
    read = await receive_type(ws_t, "receipt")
    assert (read["kind"], read["seq"]) == ("read", 2)

    # The school turns read receipts off: nothing more is stored or told.
    async with http.put(
        server.url + "/v1/admin/schools/9999999D/settings",
        json={"delivered_receipts": True, "read_receipts": False},
        headers={"Authorization": f"Bearer {server.operator_token}"},
    ) as r:
        assert r.status == 200
    await send_envelopes(ws_t, conversation, "m2", {p.device_id: b"y"})
    await receive_type(ws_p, "deliver")
    await ws_p.send_json({"type": "read", "v": 1, "conversation": conversation, "seq": 3})
    await ws_p.send_json({"type": "ack", "v": 1, "envelope_ids": [f"{conversation}:3"]})
    after = await receive_type(ws_t, "receipt")
    assert (after["kind"], after["seq"]) == ("delivered", 3)
    async with http.get(
        f"{server.url}/v1/conversations/{conversation}/receipts", headers=auth(t)
    ) as r:
        stored = (await r.json())["receipts"][p.person_id]
    assert stored == {"delivered": 3, "read": 2}
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_attachments_stream_in_and_out_for_members_only(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (p, ws_p), (other, ws_o) = await online(http, server, "T001", "R001", "R002")
    direct = await t.conversation(http, server.url, "direct", [p.person_id])
    blob = bytes(range(256)) * 4096  # 1 MiB of "ciphertext"
    url = f"{server.url}/v1/conversations/{direct['id']}/attachments"
    async with http.post(url, data=io.BytesIO(blob), headers=auth(t)) as r:
        assert r.status == 201
        attachment = (await r.json())["attachment_id"]
    async with http.get(f"{server.url}/v1/attachments/{attachment}", headers=auth(p)) as r:
        assert r.status == 200 and await r.read() == blob
    async with http.get(f"{server.url}/v1/attachments/{attachment}", headers=auth(other)) as r:
        assert r.status == 404
    files = server.store.db["attachments.files"]
    before = await files.count_documents({})
    too_big = io.BytesIO(b"\x00" * (server.settings.max_attachment_bytes + 1))
    async with http.post(url, data=too_big, headers=auth(t)) as r:
        assert r.status in (413, 422)
    assert await files.count_documents({}) == before
    for ws in (ws_t, ws_p, ws_o):
        await ws.close()


async def test_expired_messages_are_signalled_on_catch_up(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    (t, ws_t), (p, ws_p) = await online(http, server, "T001", "R001")
    direct = await t.conversation(http, server.url, "direct", [p.person_id])
    conversation = direct["id"]
    await receive_type(ws_p, "event")
    await ws_p.send_json({"type": "ack", "v": 1, "envelope_ids": [f"{conversation}:1"]})
    await ws_p.send_json({"type": "sync", "v": 1, "conversation": conversation, "since": 1})
    await receive_type(ws_p, "synced")
    await ws_p.close()
    for i in range(3):
        await send_envelopes(ws_t, conversation, f"e{i}", {p.device_id: b"x"})
        await receive_type(ws_t, "sent")
    # What the TTL index does after the undelivered lifetime, done now:
    await server.store.messages.collection.delete_many(
        {"conversation": conversation, "seq": {"$lte": 3}}
    )
    ws_p = await p.connect(http, server.ws_url)
    expired = await receive(ws_p)
    assert (expired["type"], expired["from_seq"], expired["to_seq"]) == ("expired", 2, 3)
    assert (await receive(ws_p))["seq"] == 4
    for ws in (ws_t, ws_p):
        await ws.close()


async def test_a_backlog_beyond_the_bound_is_cut_with_an_expired_signal(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with running_server(database_uri, tmp_path, max_backlog=10) as server:
        await relax_rate_limits(http, server.url, server.operator_token)
        (t, ws_t), (p, ws_p) = await online(http, server, "T001", "R001")
        direct = await t.conversation(http, server.url, "direct", [p.person_id])
        await ws_p.close()
        for i in range(25):
            await send_envelopes(ws_t, direct["id"], f"b{i}", {p.device_id: bytes([i])})
            await receive_type(ws_t, "sent")
        ws_p = await p.connect(http, server.ws_url)
        expired = await receive(ws_p)
        assert (expired["type"], expired["from_seq"], expired["to_seq"]) == ("expired", 1, 16)
        seqs = [(await receive_type(ws_p, "deliver"))["seq"] for _ in range(10)]
        assert seqs == list(range(17, 27))
        for ws in (ws_t, ws_p):
            await ws.close()


async def test_the_end_of_the_school_year_archives_class_channels(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    from server.state import RETENTION

    ((teacher, ws),) = await online(http, server, "T001")
    director = server.person("D001")["person_id"]
    channel = await teacher.conversation(
        http, server.url, "class", [director], class_id="9999999D/5e B", title="5e B"
    )
    scheduler = server.app[RETENTION]
    # Still in the school year that started on 1 September 2037: nothing happens.
    ran = await scheduler.run_once(server.clock.now() + timedelta(days=300))
    assert ran.get("class_channels", {}) == {}
    # On 2 September 2038 the 2037-2038 channel is archived; it takes no more messages.
    ran = await scheduler.run_once(datetime(2038, 9, 2, 3, 0, tzinfo=UTC))
    assert ran["class_channels"] == {"9999999D": 1}
    stored = await server.store.conversations.get(channel["id"])
    assert stored is not None and stored.archived_at is not None
    server.app[SERVICES].lookups.forget_conversation(channel["id"])
    await send_envelopes(ws, channel["id"], "late", {teacher.device_id: b"x"})
    assert (await receive_type(ws, "error"))["code"] == "unknown_conversation"
    await ws.close()
