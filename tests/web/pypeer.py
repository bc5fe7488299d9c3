"""A Python device built directly on ``crypto/`` and aiohttp: the interop peer.

It speaks the wire protocol itself (like tests/support/devices.py) rather than
through the SDK, so the web client is checked against the protocol documents and
``crypto/``, not against another client's choices. Message bodies are the SDK's
content format (franked payload, canonical JSON body), written out here by hand.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from crypto import (
    DeviceKeys,
    GroupReceiver,
    GroupSender,
    PreKeyBundle,
    Session,
    accept_session,
    frank,
    initiate_session,
    open_franked,
)
from crypto.encoding import b64url_decode, b64url_encode
from protocol import auth_message
from tests.support.devices import receive


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class PythonPeer:
    url: str
    keys: DeviceKeys = field(default_factory=lambda: DeviceKeys.generate(1_788_000_000, 20))
    device_id: str = ""
    person_id: str = ""
    token: str = ""
    ws: aiohttp.ClientWebSocketResponse | None = None
    sessions: dict[str, Session] = field(default_factory=dict)
    receivers: dict[tuple[str, str], GroupReceiver] = field(default_factory=dict)

    async def start(self, http: aiohttp.ClientSession, code: str) -> None:
        """Enrol, log in over the WebSocket and publish prekeys."""
        identity = b64url_encode(self.keys.identity.public)
        async with http.post(
            self.url + "/v1/enrol", json={"code": code, "identity_key": identity}
        ) as response:
            enrolled = await response.json()
            assert response.status == 201, enrolled
        self.device_id, self.person_id = enrolled["device_id"], enrolled["person_id"]
        self.ws = await http.ws_connect(self.url.replace("http", "ws", 1) + "/v1/ws")
        challenge = await receive(self.ws)
        message = auth_message(challenge["origin"], b64url_decode(challenge["nonce"]))
        await self.ws.send_json(
            {
                "type": "auth",
                "v": 1,
                "device_id": self.device_id,
                "signature": b64url_encode(self.keys.identity.sign(message)),
            }
        )
        ready = await receive(self.ws)
        assert ready["type"] == "ready", ready
        self.token = ready["session_token"]
        spk = self.keys.signed_prekey
        upload = {
            "signed_prekey": {
                "id": spk.key_id,
                "key": b64url_encode(spk.key_pair.public),
                "signature": b64url_encode(spk.signature),
            },
            "one_time_prekeys": [
                {"id": k.key_id, "key": b64url_encode(k.key_pair.public)}
                for k in self.keys.one_time_prekeys
            ],
        }
        async with http.put(
            self.url + "/v1/devices/me/prekeys", json=upload, headers=self._auth()
        ) as response:
            assert response.status == 200, await response.text()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def devices_of(self, http: aiohttp.ClientSession, person_id: str) -> list[dict[str, Any]]:
        async with http.get(
            f"{self.url}/v1/people/{person_id}/devices", headers=self._auth()
        ) as response:
            assert response.status == 200, await response.text()
            devices: list[dict[str, Any]] = (await response.json())["devices"]
            return devices

    async def open_session(self, http: aiohttp.ClientSession, person_id: str) -> str:
        """Start a session with the person's only device (X3DH as initiator)."""
        (device,) = await self.devices_of(http, person_id)
        bundle = PreKeyBundle.from_dict(device["bundle"])
        assert bundle.identity_key == b64url_decode(device["identity_key"])
        self.sessions[device["device_id"]] = initiate_session(self.keys, bundle)
        return str(device["device_id"])

    async def conversation(
        self, http: aiohttp.ClientSession, kind: str, members: list[str]
    ) -> dict[str, Any]:
        """Create (or find, for ``direct``) a conversation over REST."""
        async with http.post(
            self.url + "/v1/conversations",
            json={"kind": kind, "members": members},
            headers=self._auth(),
        ) as response:
            created: dict[str, Any] = await response.json()
            assert response.status in (200, 201), created
            return created

    async def send_pairwise(
        self, conversation: str, device_id: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        franked = frank(body(content))
        ciphertext = self.sessions[device_id].encrypt(franked.payload)
        frame: dict[str, Any] = {
            "type": "send",
            "v": 1,
            "client_msg_id": secrets.token_urlsafe(9),
            "conversation": conversation,
            "envelopes": [{"device_id": device_id, "ciphertext": b64url_encode(ciphertext)}],
            "commitment": b64url_encode(franked.commitment),
        }
        return await self._send(frame)

    async def send_group(
        self, conversation: str, sender: GroupSender, device_ids: list[str], text: str
    ) -> dict[str, Any]:
        franked = frank(body({"t": "text", "text": text, "to": None}))
        frame = {
            "type": "send",
            "v": 1,
            "client_msg_id": secrets.token_urlsafe(9),
            "conversation": conversation,
            "group": {
                "ciphertext": b64url_encode(sender.encrypt(franked.payload)),
                "device_ids": device_ids,
            },
            "commitment": b64url_encode(franked.commitment),
        }
        return await self._send(frame)

    async def _send(self, frame: dict[str, Any]) -> dict[str, Any]:
        assert self.ws is not None
        await self.ws.send_json(frame)
        for _ in range(100):
            answer = await receive(self.ws)
            if answer["type"] in ("sent", "error"):
                assert answer["type"] == "sent", answer
                return answer
        raise AssertionError("no sent frame")

    async def next_content(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Decrypt the next delivered envelope: ``(content, deliver frame)``."""
        assert self.ws is not None
        for _ in range(100):
            frame = await receive(self.ws, timeout=30)
            if frame["type"] == "event":
                await self._ack(frame["envelope_id"])
            if frame["type"] != "deliver":
                continue
            ciphertext = b64url_decode(frame["ciphertext"])
            sender = frame["sender_device"]
            if frame["group"]:
                receiver = self.receivers[(frame["conversation"], sender)]
                payload = receiver.decrypt(ciphertext)
            elif sender in self.sessions:
                payload = self.sessions[sender].decrypt(ciphertext)
            else:
                accepted = accept_session(self.keys, ciphertext)
                self.sessions[sender] = accepted.session
                if accepted.used_one_time_prekey_id is not None:
                    self.keys = self.keys.without_one_time_prekey(accepted.used_one_time_prekey_id)
                payload = accepted.plaintext
            opened, _ = open_franked(payload, b64url_decode(frame["commitment"]))
            await self._ack(frame["envelope_id"])
            content: dict[str, Any] = json.loads(opened)
            if content["t"] == "sender_key":
                receiver = self.receivers.setdefault(
                    (content["conversation"], sender), GroupReceiver()
                )
                receiver.add_distribution(b64url_decode(content["distribution"]))
            return content, frame
        raise AssertionError("nothing delivered")

    async def _ack(self, envelope_id: str) -> None:
        assert self.ws is not None
        await self.ws.send_json({"type": "ack", "v": 1, "envelope_ids": [envelope_id]})

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
