"""The load generator's device: login, frames and opaque ciphertext (docs/protocol.md).

Written against the wire protocol with aiohttp's client and the standard
library's json, not with the SDK: the harness measures the server, so the
client side stays as cheap as possible. Ciphertexts are opaque random bytes of
a realistic size ("pre-established sessions"); their first 8 bytes carry the
sender's ``CLOCK_MONOTONIC`` time in nanoseconds (one clock for every process
of the machine), from which the receiver computes send→deliver latency. With
``--with-crypto`` the same 8 bytes travel inside a real Double Ratchet message
(:mod:`crypto`), so client encryption is part of what is measured.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from protocol import auth_message

_STAMP = struct.Struct(">Q")
_POOL = os.urandom(1 << 20)


class BenchError(Exception):
    """Root of the harness's errors: a server did not answer as the protocol says."""


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def stamped(size: int, salt: int = 0) -> bytes:
    """``size`` opaque bytes whose first 8 are the current monotonic time (ns)."""
    body_len = max(0, size - _STAMP.size)
    start = (salt * 7919) % (len(_POOL) - body_len)
    return _STAMP.pack(time.monotonic_ns()) + _POOL[start : start + body_len]


def stamp_ns(payload: bytes) -> int:
    """The monotonic time (ns) stamped at the head of ``payload``."""
    sent_ns: int = _STAMP.unpack_from(payload)[0]
    return sent_ns


def latency_ms(payload: bytes) -> float:
    """Milliseconds since the stamp at the head of ``payload`` was taken."""
    sent_ns: int = _STAMP.unpack_from(payload)[0]
    return (time.monotonic_ns() - sent_ns) / 1e6


@dataclass(frozen=True)
class Credentials:
    """An enrolled device: its id, its person and the 32-byte seed of its Ed25519 key."""

    device_id: str
    seed: bytes
    person_id: str = ""

    def to_json(self) -> list[str]:
        return [self.device_id, self.seed.hex(), self.person_id]

    @classmethod
    def from_json(cls, data: list[str]) -> Credentials:
        return cls(data[0], bytes.fromhex(data[1]), data[2] if len(data) > 2 else "")


async def login(
    http: aiohttp.ClientSession, ws_url: str, creds: Credentials, timeout: float = 30
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """Open ``/v1/ws``, answer the challenge, return the socket once ``ready``.

    Raises:
        BenchError: the server refused the login or answered out of protocol.
    """
    ws = await asyncio.wait_for(http.ws_connect(ws_url, max_msg_size=0), timeout)
    try:
        challenge = await _frame(ws, timeout)
        if challenge.get("type") != "challenge":
            raise BenchError(f"expected challenge, got {challenge.get('type')}")
        nonce = b64d(challenge["nonce"])
        key = SigningKey(creds.seed)
        signature = key.sign(auth_message(challenge["origin"], nonce)).signature
        auth = {"type": "auth", "v": 1, "device_id": creds.device_id, "signature": b64e(signature)}
        await ws.send_str(json.dumps(auth))
        ready = await _frame(ws, timeout)
        if ready.get("type") != "ready":
            raise BenchError(f"login refused: {ready.get('code')} {ready.get('message')}")
    except BaseException:
        await ws.close()
        raise
    return ws, ready


async def _frame(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise BenchError(f"connection closed during login ({msg.type.name}, {msg.extra})")
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


def send_frame(
    client_msg_id: str,
    conversation: str,
    pairwise: dict[str, bytes] | None = None,
    group: tuple[bytes, list[str]] | None = None,
) -> str:
    """A ``send`` frame into ``conversation``: pairwise envelopes and/or one group ciphertext."""
    frame: dict[str, Any] = {
        "type": "send",
        "v": 1,
        "client_msg_id": client_msg_id,
        "conversation": conversation,
    }
    if pairwise:
        frame["envelopes"] = [{"device_id": d, "ciphertext": b64e(c)} for d, c in pairwise.items()]
    if group is not None:
        frame["group"] = {"ciphertext": b64e(group[0]), "device_ids": group[1]}
    return json.dumps(frame)


def ack_frame(highest: dict[str, int]) -> str:
    """A cumulative ``ack``: the highest seq received in each conversation.

    Envelope ids are ``<conversation>:<seq>``; acknowledging seq n acknowledges
    every seq <= n of that conversation (docs/protocol.md, "Delivery").
    """
    ids = [f"{conversation}:{seq}" for conversation, seq in highest.items()]
    return json.dumps({"type": "ack", "v": 1, "envelope_ids": ids})
