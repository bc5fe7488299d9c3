"""The bare relay: the network-path ceiling for Carnet (issue 9, baseline 1).

aiohttp and the standard library's json, nothing else: no authentication (the
``auth`` frame is answered ``ready`` unchecked), no validation beyond JSON, no
storage, no metrics. It speaks just enough of docs/protocol.md for the same
load generator to drive it with the same frame sizes: ``send`` is answered
``sent`` (with the next seq of its conversation, counted in memory) and each
envelope (or the group ciphertext) is forwarded as a ``deliver`` frame
(``envelope_id`` ``<conversation>:<seq>``) to the devices connected here;
``ack`` is ignored, conversations are not checked. Loopback only.
Run: ``python -m bench.baseline_relay --port P``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from typing import Any

from aiohttp import WSMsgType, web

SOCKETS = web.AppKey("sockets", dict[str, web.WebSocketResponse])
SEQS = web.AppKey("seqs", dict[str, int])


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


async def acknowledge(request: web.Request) -> web.Response:
    """Announcement acknowledgements: accepted unchecked, stored nowhere."""
    await request.read()
    return web.json_response({"acknowledged": True, "new": True}, status=201)


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=256 * 1024)
    await ws.prepare(request)
    nonce = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    await ws.send_str(json.dumps({"type": "challenge", "v": 1, "nonce": nonce, "origin": "x"}))
    first = await ws.receive()
    if first.type != WSMsgType.TEXT:
        return ws
    device = json.loads(first.data)["device_id"]
    sockets = request.app[SOCKETS]
    sockets[device] = ws
    ready = {"type": "ready", "v": 1, "device_id": device, "person_id": device}
    await ws.send_str(json.dumps({**ready, "session_token": "", "session_expires": 0}))
    try:
        async for msg in ws:  # ends when the socket closes
            if msg.type == WSMsgType.TEXT:
                await _on_frame(json.loads(msg.data), device, ws, request.app)
    finally:
        if sockets.get(device) is ws:
            del sockets[device]
    return ws


async def _on_frame(
    frame: dict[str, Any], device: str, ws: web.WebSocketResponse, app: web.Application
) -> None:
    if frame.get("type") != "send":
        return
    sockets, seqs = app[SOCKETS], app[SEQS]
    ref, conversation = frame["client_msg_id"], frame["conversation"]
    seq = seqs[conversation] = seqs.get(conversation, 0) + 1
    message_id = f"{device}.{ref}"
    ts = int(time.time() * 1000)
    sent = {"type": "sent", "v": 1, "client_msg_id": ref, "message_id": message_id}
    await ws.send_str(json.dumps({**sent, "conversation": conversation, "seq": seq, "ts": ts}))
    targets = [(e["device_id"], e["ciphertext"], False) for e in frame.get("envelopes", [])]
    group = frame.get("group")
    if group:
        targets += [(d, group["ciphertext"], True) for d in group["device_ids"]]
    for target, ciphertext, is_group in targets:
        peer = sockets.get(target)
        if peer is None or peer.closed:
            continue
        deliver = {
            "type": "deliver",
            "v": 1,
            "envelope_id": f"{conversation}:{seq}",
            "message_id": message_id,
            "conversation": conversation,
            "seq": seq,
            "sender_device": device,
            "sender_person": device,
            "ciphertext": ciphertext,
            "group": is_group,
            "ts": ts,
        }
        await peer.send_str(json.dumps(deliver))


def create_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = {}
    app[SEQS] = {}
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/ws", relay)
    app.router.add_post("/v1/conversations/{id}/acknowledgements", acknowledge)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="bare aiohttp relay (benchmark baseline)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    web.run_app(create_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
