"""WebSocket hygiene: Origin before upgrade, 1009 on oversize frames, documented
errors for every malformed frame, 1008 on repeated abuse or a failed login."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from crypto.encoding import b64url_decode
from tests.support.devices import WireDevice, b64, receive
from tests.support.servers import RunningServer


async def enrolled(http: aiohttp.ClientSession, server: RunningServer) -> WireDevice:
    device = WireDevice()
    await device.enrol(http, server.url, server.person("T001")["code"])
    return device


async def test_foreign_origin_is_refused_before_upgrade(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(server.ws_url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    # The same request without upgrade shows the documented body.
    async with http.get(server.ws_url, headers={"Origin": "https://evil.example"}) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "forbidden"


async def test_own_origin_is_accepted(server: RunningServer, http: aiohttp.ClientSession) -> None:
    device = await enrolled(http, server)
    ws = await device.connect(
        http, server.ws_url, headers={"Origin": server.settings.public_origin}
    )
    await ws.close()


async def test_oversize_frame_closes_with_1009(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    device = await enrolled(http, server)
    ws = await device.connect(http, server.ws_url)
    await ws.send_str("x" * (server.settings.max_frame_bytes + 1))
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert msg.data == 1009


def send_frame(envelopes: Any = None, **fields: Any) -> str:
    frame = {
        "type": "send",
        "v": 1,
        "conversation": "c_x",
        "client_msg_id": "c1",
        "envelopes": envelopes,
        **fields,
    }
    return json.dumps(frame)


MALFORMED = [
    ("{not json", "bad_frame"),
    ("[1, 2]", "bad_frame"),
    ('{"type": "teleport", "v": 1}', "bad_frame"),
    ('{"type": "send", "v": 9, "client_msg_id": "a", "envelopes": []}', "unsupported_version"),
    (send_frame([{"device_id": "d_x", "ciphertext": "AA"}], conversation=None), "bad_frame"),
    ('{"type": "ack", "v": 1, "envelope_ids": ["no-seq"]}', "bad_frame"),
    ('{"type": "sync", "v": 1, "conversation": "c_x", "since": -1}', "bad_frame"),
    ('{"type": "send", "client_msg_id": "a"}', "bad_frame"),
    (send_frame([]), "bad_frame"),
    (send_frame([{"device_id": "d_x", "ciphertext": "@@@"}]), "bad_frame"),
    (send_frame([{"device_id": "bad id!", "ciphertext": "AA"}]), "bad_frame"),
    (send_frame([{"device_id": "d_x", "ciphertext": "AA"}], extra=True), "bad_frame"),
    (send_frame([{"device_id": "d_x", "ciphertext": "AA"}] * 2), "bad_frame"),
    ('{"type": "ack", "v": 1, "envelope_ids": []}', "bad_frame"),
    ('{"type": "auth", "v": 1, "device_id": "d_x", "signature": "AA=="}', "bad_frame"),
]


@pytest.mark.parametrize(("text", "code"), MALFORMED)
async def test_malformed_frames_get_their_documented_error(
    server: RunningServer, http: aiohttp.ClientSession, text: str, code: str
) -> None:
    device = await enrolled(http, server)
    ws = await device.connect(http, server.ws_url)
    await ws.send_str(text)
    error = await receive(ws)
    assert error["type"] == "error" and error["code"] == code, error
    assert "Traceback" not in error["message"] and "pymongo" not in error["message"]
    # The connection stays usable after one bad frame.
    await ws.send_json({"type": "ack", "v": 1, "envelope_ids": ["nothing"]})
    await ws.send_str("{")
    assert (await receive(ws))["code"] == "bad_frame"
    await ws.close()


async def test_binary_frames_are_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    device = await enrolled(http, server)
    ws = await device.connect(http, server.ws_url)
    await ws.send_bytes(b"\x00\x01")
    assert (await receive(ws))["code"] == "bad_frame"
    await ws.close()


async def test_repeated_bad_frames_close_with_1008(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    device = await enrolled(http, server)
    ws = await device.connect(http, server.ws_url)
    for _ in range(server.settings.bad_frames_before_close):
        await ws.send_str("{")
    codes = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        codes.append(json.loads(msg.data)["code"])
    assert codes == ["bad_frame"] * server.settings.bad_frames_before_close
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008


async def login_frames(
    http: aiohttp.ClientSession, server: RunningServer, answer: Any
) -> tuple[dict[str, Any], int]:
    ws = await http.ws_connect(server.ws_url)
    challenge = await receive(ws)
    await ws.send_str(answer(challenge) if callable(answer) else answer)
    error = await receive(ws)
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    return error, msg.data


async def test_frames_before_login_are_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    error, close = await login_frames(
        http, server, send_frame([{"device_id": "d_x", "ciphertext": "AA"}])
    )
    assert (error["code"], close) == ("not_authenticated", 1008)


async def test_bad_signature_is_refused(server: RunningServer, http: aiohttp.ClientSession) -> None:
    device = await enrolled(http, server)
    impostor = WireDevice()

    def answer(challenge: dict[str, Any]) -> str:
        signature = impostor.key.sign(b64url_decode(challenge["nonce"])).signature
        return json.dumps(
            {"type": "auth", "v": 1, "device_id": device.device_id, "signature": b64(signature)}
        )

    error, close = await login_frames(http, server, answer)
    assert (error["code"], close) == ("auth_failed", 1008)


async def test_signature_for_another_origin_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    from protocol import auth_message

    device = await enrolled(http, server)

    def answer(challenge: dict[str, Any]) -> str:
        message = auth_message("https://phishing.example", b64url_decode(challenge["nonce"]))
        signature = device.key.sign(message).signature
        return json.dumps(
            {"type": "auth", "v": 1, "device_id": device.device_id, "signature": b64(signature)}
        )

    error, close = await login_frames(http, server, answer)
    assert (error["code"], close) == ("auth_failed", 1008)


async def test_unknown_device_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    answer = json.dumps(
        {"type": "auth", "v": 1, "device_id": "d_ghost", "signature": b64(b"\x00" * 64)}
    )
    error, close = await login_frames(http, server, answer)
    assert (error["code"], close) == ("auth_failed", 1008)


async def test_silence_after_the_challenge_is_closed(
    database_uri: str, tmp_path: Any, http: aiohttp.ClientSession
) -> None:
    from tests.support.servers import running_server

    async with running_server(database_uri, tmp_path, auth_timeout_seconds=0.2) as server:
        ws = await http.ws_connect(server.ws_url)
        await receive(ws)
        error = await receive(ws)
        assert error["code"] == "auth_failed"
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
