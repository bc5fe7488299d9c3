"""A bare test device: an Ed25519 key, enrolment over HTTP, login over WebSocket.

Deliberately written against the wire protocol with aiohttp's client, not with
the SDK, so that server tests do not depend on the SDK being right.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from crypto.encoding import b64url_decode, b64url_encode
from protocol import auth_message


def b64(data: bytes) -> str:
    return b64url_encode(data)


@dataclass
class WireDevice:
    key: SigningKey = field(default_factory=SigningKey.generate)
    device_id: str = ""
    person_id: str = ""
    session_token: str = ""

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    async def enrol(self, http: aiohttp.ClientSession, url: str, code: str) -> None:
        async with http.post(
            url + "/v1/enrol", json={"code": code, "identity_key": b64(self.public_key)}
        ) as response:
            body = await response.json()
            assert response.status == 201, body
        self.device_id, self.person_id = body["device_id"], body["person_id"]

    async def connect(
        self, http: aiohttp.ClientSession, ws_url: str, **kwargs: Any
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket and answer the challenge; returns it after ``ready``."""
        ws = await http.ws_connect(ws_url, **kwargs)
        challenge = await receive(ws)
        assert challenge["type"] == "challenge"
        nonce = b64url_decode(challenge["nonce"])
        signature = self.key.sign(auth_message(challenge["origin"], nonce)).signature
        await ws.send_json(
            {"type": "auth", "v": 1, "device_id": self.device_id, "signature": b64(signature)}
        )
        ready = await receive(ws)
        assert ready["type"] == "ready", ready
        self.session_token = ready["session_token"]
        return ws

    async def conversation(
        self, http: aiohttp.ClientSession, url: str, kind: str, members: list[str], **extra: Any
    ) -> dict[str, Any]:
        """Create (or find, for ``direct``) a conversation; needs a prior :meth:`connect`."""
        async with http.post(
            url + "/v1/conversations",
            json={"kind": kind, "members": members, **extra},
            headers={"Authorization": f"Bearer {self.session_token}"},
        ) as response:
            body: dict[str, Any] = await response.json()
            assert response.status in (200, 201), body
        return body


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def send_envelopes(
    ws: aiohttp.ClientWebSocketResponse,
    conversation: str,
    client_msg_id: str,
    envelopes: dict[str, bytes],
) -> None:
    await ws.send_json(
        {
            "type": "send",
            "v": 1,
            "conversation": conversation,
            "client_msg_id": client_msg_id,
            "envelopes": [{"device_id": d, "ciphertext": b64(c)} for d, c in envelopes.items()],
        }
    )


async def receive_type(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10
) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others (events, receipts)."""
    for _ in range(100):
        frame = await receive(ws, timeout)
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame in 100 frames")
