"""Prekey publication (signature checked), bundles that consume one-time prekeys
atomically, group fan-out stored once, and franking stamps on relay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp

from crypto import DeviceKeys, PreKeyBundle, frank
from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import CryptoError
from server.background import purge_delivered
from server.devices_api import PREKEYS_LOW
from server.state import FRANKING
from tests.support.devices import WireDevice, b64, receive, receive_type
from tests.support.servers import RunningServer


class KeyedDevice(WireDevice):
    """A wire device whose identity key is a crypto.DeviceKeys identity."""

    def __init__(self, keys: DeviceKeys) -> None:
        from nacl.signing import SigningKey

        super().__init__(key=SigningKey(keys.identity.seed))
        self.keys = keys
        self.token = ""

    async def login(
        self, http: aiohttp.ClientSession, server: RunningServer
    ) -> aiohttp.ClientWebSocketResponse:
        ws = await self.connect(http, server.ws_url)
        return ws


def upload_body(keys: DeviceKeys, with_signed: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "one_time_prekeys": [
            {"id": k.key_id, "key": b64url_encode(k.key_pair.public)} for k in keys.one_time_prekeys
        ]
    }
    if with_signed:
        spk = keys.signed_prekey
        body["signed_prekey"] = {
            "id": spk.key_id,
            "key": b64url_encode(spk.key_pair.public),
            "signature": b64url_encode(spk.signature),
        }
    return body


async def ready_token(
    http: aiohttp.ClientSession, server: RunningServer, device: WireDevice
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await http.ws_connect(server.ws_url)
    challenge = await receive(ws)
    from crypto.encoding import b64url_decode
    from protocol import auth_message

    sig = device.key.sign(
        auth_message(challenge["origin"], b64url_decode(challenge["nonce"]))
    ).signature
    await ws.send_json(
        {"type": "auth", "v": 1, "device_id": device.device_id, "signature": b64(sig)}
    )
    ready = await receive(ws)
    return ws, ready


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_publish_then_fetch_bundles_consumes_one_time_prekeys(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    parent_keys = DeviceKeys.generate(now=0, one_time_prekeys=12)
    parent = KeyedDevice(parent_keys)
    await parent.enrol(http, server.url, server.person("R001")["code"])
    teacher = WireDevice()
    await teacher.enrol(http, server.url, server.person("T001")["code"])

    ws_parent, ready = await ready_token(http, server, parent)
    assert ready["prekeys_left"] == 0
    async with http.put(
        server.url + "/v1/devices/me/prekeys",
        json=upload_body(parent_keys),
        headers=bearer(ready["session_token"]),
    ) as r:
        assert r.status == 200 and (await r.json()) == {"prekeys_left": 12}

    ws_teacher, teacher_ready = await ready_token(http, server, teacher)
    url = f"{server.url}/v1/people/{parent.person_id}/devices"

    async def fetch() -> dict[str, Any]:
        async with http.get(url, headers=bearer(teacher_ready["session_token"])) as r:
            assert r.status == 200
            body: dict[str, Any] = await r.json()
            return body

    results = await asyncio.gather(*(fetch() for _ in range(12)))
    ids = []
    for body in results:
        (device,) = body["devices"]
        assert device["kind"] == "app" and device["device_id"] == parent.device_id
        bundle = PreKeyBundle.from_dict(device["bundle"])
        bundle.verify()
        ids.append(bundle.one_time_prekey_id)
    assert sorted(ids) == sorted(k.key_id for k in parent_keys.one_time_prekeys)  # no reuse
    # The parent was told its one-time prekeys ran low.
    lows = []
    while True:
        frame = await receive(ws_parent)
        if frame["type"] == "prekeys_low":
            lows.append(frame["remaining"])
            if frame["remaining"] == 0:
                break
    # Concurrent fetches may report counts out of order; each is below the threshold.
    assert lows and all(0 <= n < PREKEYS_LOW for n in lows)
    # Out of one-time prekeys: the signed prekey alone.
    device = (await fetch())["devices"][0]
    assert "one_time_prekey" not in device["bundle"]
    await ws_parent.close()
    await ws_teacher.close()


async def test_forged_signed_prekey_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    keys = DeviceKeys.generate(now=0, one_time_prekeys=1)
    device = KeyedDevice(keys)
    await device.enrol(http, server.url, server.person("R002")["code"])
    ws, ready = await ready_token(http, server, device)
    body = upload_body(keys)
    body["signed_prekey"]["key"] = b64url_encode(
        DeviceKeys.generate(now=0, one_time_prekeys=0).signed_prekey.key_pair.public
    )
    async with http.put(
        server.url + "/v1/devices/me/prekeys", json=body, headers=bearer(ready["session_token"])
    ) as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_request"
    async with http.put(
        server.url + "/v1/devices/me/prekeys",
        json=upload_body(keys, with_signed=False),
        headers=bearer(ready["session_token"]),
    ) as r:
        assert r.status == 422  # first upload needs a signed prekey
    await ws.close()


async def test_device_api_needs_a_valid_session_token(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    for headers in ({}, bearer("d_x.99999999999999.1.AAAA"), bearer(server.operator_token)):
        async with http.get(server.url + "/v1/directory", headers=headers) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_directory_lists_the_school(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    device = WireDevice()
    await device.enrol(http, server.url, server.person("E001")["code"])
    ws, ready = await ready_token(http, server, device)
    async with http.get(server.url + "/v1/directory", headers=bearer(ready["session_token"])) as r:
        people = (await r.json())["people"]
    # A pupil sees whom the contact policy lets them reach: their teacher and the
    # school's staff, not other pupils or parents (docs/moderation.md).
    names = {p["name"] for p in people}
    assert {"Claire Durand", "Marc Lefèvre"} <= names
    assert not names & {"Hugo Petit", "Thomas Roux", "Sophie Bernard"}
    async with http.get(server.url + "/v1/me", headers=bearer(ready["session_token"])) as r:
        me = await r.json()
    assert (me["role"], me["uai"], me["classes"]) == ("pupil", "9999999D", ["9999999D/5e B"])
    assert me["receipts"] == {"delivered_receipts": True, "read_receipts": True}
    assert me["quiet_hours"]["start"] == "20:00" and me["quiet_hours"]["applies"] is False
    await ws.close()


async def test_group_message_is_stored_once_and_delivered_to_each_member(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    members = []
    for ext in ("T001", "R001", "R002", "R003"):
        d = WireDevice()
        await d.enrol(http, server.url, server.person(ext)["code"])
        members.append(d)
    sender, *others = members
    sockets = [await d.connect(http, server.ws_url) for d in members]
    group = await sender.conversation(
        http, server.url, "group", [d.person_id for d in others], title="Sortie"
    )
    conversation = group["id"]
    assert group["owners"] == [sender.person_id]
    franked = frank(b"Sortie au musee vendredi")
    await sockets[0].send_json(
        {
            "type": "send",
            "v": 1,
            "client_msg_id": "g1",
            "conversation": conversation,
            "group": {
                "ciphertext": b64(b"one group ciphertext"),
                "device_ids": [d.device_id for d in others],
            },
            "commitment": b64(franked.commitment),
        }
    )
    sent = await receive_type(sockets[0], "sent")
    assert sent["stamp"] and sent["seq"] == 2
    for ws in sockets[1:]:
        assert (await receive_type(ws, "event"))["event"]["action"] == "created"
        frame = await receive(ws)
        assert frame["group"] is True and frame["ciphertext"] == b64(b"one group ciphertext")
        assert frame["conversation"] == conversation and frame["stamp"] == sent["stamp"]
    messages = server.store.messages.collection
    stored = await messages.find({"conversation": conversation, "seq": 2}).to_list()
    assert len(stored) == 1 and stored[0]["group"] == b"one group ciphertext"
    assert "pairwise" not in stored[0] and len(stored[0]["recipients"]) == 3
    # The stamp verifies for the real sender, conversation and time, and not otherwise.
    keyring = server.app[FRANKING]
    stamp = b64url_decode(sent["stamp"])
    keyring.verify_stamp(stamp, franked.commitment, sender.device_id, conversation, sent["ts"])
    for wrong in (
        (others[0].device_id, conversation, sent["ts"]),
        (sender.device_id, "c_other", sent["ts"]),
        (sender.device_id, conversation, sent["ts"] + 1),
    ):
        try:
            keyring.verify_stamp(stamp, franked.commitment, *wrong)
        except CryptoError:
            continue
        raise AssertionError(f"stamp verified for {wrong}")
    # Once every recipient has acknowledged, the one ciphertext is purged.
    for ws in sockets[1:2]:
        await ws.send_json({"type": "ack", "v": 1, "envelope_ids": [f"{conversation}:2"]})
        await ws.send_json({"type": "sync", "v": 1, "conversation": conversation, "since": 2})
        assert (await receive_type(ws, "synced"))["head"] == 2
    await server.write_acks()
    await purge_delivered(server.store, server.clock.now() - timedelta(hours=1))
    assert "group" in (await messages.find_one({"conversation": conversation, "seq": 2}) or {})
    for ws in sockets[2:]:
        await ws.send_json({"type": "ack", "v": 1, "envelope_ids": [f"{conversation}:2"]})
        await ws.send_json({"type": "sync", "v": 1, "conversation": conversation, "since": 2})
        assert (await receive_type(ws, "synced"))["head"] == 2
    # The sender's own device never receives its message: its cursor must not hold the purge.
    await server.write_acks()
    await purge_delivered(server.store, server.clock.now() - timedelta(hours=1))
    kept = await messages.find_one({"conversation": conversation, "seq": 2})
    assert kept is not None and "group" not in kept and kept["sender_person"] == sender.person_id
    for ws in sockets:
        await ws.close()
