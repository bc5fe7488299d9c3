"""Opening an authenticated WebSocket (docs/protocol.md, "Login").

One function, :func:`open_connection`: connect with the server's ``Origin``, no
compression (ciphertext does not compress; the server refuses nothing but gains
nothing), read the ``challenge``, check that it names the origin we connected to,
sign ``protocol.auth_message(origin, nonce)`` with the identity key and wait for
``ready``. The signed origin is ours, not the one the challenge claims, so a
challenge relayed by a phishing proxy is never signed for the real server.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.typing import Origin

from client.errors import ConnectionFailed
from crypto import IdentityKeyPair
from protocol import (
    AuthFrame,
    ChallengeFrame,
    ErrorFrame,
    ProtocolError,
    ReadyFrame,
    auth_message,
    dump_frame,
    parse_server_frame,
)

__all__ = ["MAX_FRAME_BYTES", "origin_of", "open_connection", "ws_url_of"]

MAX_FRAME_BYTES = 1 << 20
"""Largest frame accepted from the server (a deliver frame of the largest ciphertext)."""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an ``http(s)`` URL.

    Args:
        url: The server URL.

    Returns:
        The origin.

    Raises:
        ConnectionFailed: not an http(s) URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConnectionFailed(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def ws_url_of(url: str) -> str:
    """The WebSocket endpoint of a server URL.

    Args:
        url: ``http(s)://host[:port][/prefix]``.

    Returns:
        ``ws(s)://host[:port][/prefix]/v1/ws``.
    """
    parts = urlsplit(url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}/v1/ws"


async def open_connection(
    url: str, device_id: str, identity: IdentityKeyPair, timeout: float = 10.0
) -> tuple[ClientConnection, ReadyFrame]:
    """Connect and log in.

    Args:
        url: The server URL (``http(s)://...``).
        device_id: Our device id.
        identity: Our identity key.
        timeout: Seconds for the whole login.

    Returns:
        The open connection and the ``ready`` frame.

    Raises:
        ConnectionFailed: unreachable, refused, wrong origin or bad login.
    """
    origin = origin_of(url)
    try:
        ws = await connect(
            ws_url_of(url),
            origin=Origin(origin),
            compression=None,
            max_size=MAX_FRAME_BYTES,
            open_timeout=timeout,
        )
    except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
        raise ConnectionFailed(f"cannot connect to {url}: {exc}") from None
    try:
        async with asyncio.timeout(timeout):
            challenge = parse_server_frame(await ws.recv())
            if not isinstance(challenge, ChallengeFrame):
                raise ConnectionFailed("the server did not start with a challenge")
            if challenge.origin.rstrip("/") != origin:
                raise ConnectionFailed(
                    f"the server signs for {challenge.origin!r}, we connected to {origin!r}"
                )
            signature = identity.sign(auth_message(origin, challenge.nonce))
            await ws.send(dump_frame(AuthFrame(device_id=device_id, signature=signature)))
            answer = parse_server_frame(await ws.recv())
    except ConnectionFailed:
        await ws.close()
        raise
    except (TimeoutError, WebSocketException, ProtocolError) as exc:
        await ws.close()
        raise ConnectionFailed(f"login failed: {exc!r}") from None
    if isinstance(answer, ErrorFrame):
        await ws.close()
        raise ConnectionFailed(f"login refused: {answer.code.value}: {answer.message}")
    if not isinstance(answer, ReadyFrame):
        await ws.close()
        raise ConnectionFailed("the server did not answer the login with ready")
    return ws, answer
