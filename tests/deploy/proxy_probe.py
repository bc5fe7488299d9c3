"""Probe a live Carnet through deploy/nginx (run by deploy/check, not by pytest).

Usage: ``python -m tests.deploy.proxy_probe HOST CAFILE READY_FILE``

Through the TLS proxy it checks that ``/healthz`` answers with HSTS, that
``/metrics`` is hidden, that a foreign Origin is refused before the upgrade,
and that a WebSocket opens and gets the server's ``challenge``. It then
writes READY_FILE and waits: deploy/check sends SIGTERM to Carnet, and the
probe exits 0 only if the socket is closed with 1001 (GOING_AWAY) as seen
by the client, through the proxy.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

GOING_AWAY = 1001


def fail(message: str) -> None:
    print(f"proxy probe: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def get(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


async def probe(host: str, context: ssl.SSLContext, ready: Path) -> None:
    status, headers = get(f"https://{host}/healthz", context)
    hsts = headers.get("Strict-Transport-Security", "")
    if status != 200 or "max-age=" not in hsts:
        fail(f"/healthz through the proxy: status {status}, HSTS {hsts!r}")
    status, _ = get(f"https://{host}/metrics", context)
    if status != 404:
        fail(f"/metrics is reachable through the proxy (status {status})")
    print("proxy probe: /healthz 200 with HSTS, /metrics hidden (404)")

    url = f"wss://{host}/v1/ws"
    try:
        async with connect(url, ssl=context, origin="https://evil.example"):
            fail("a foreign Origin opened a WebSocket")
    except InvalidStatus as exc:
        if exc.response.status_code != 403:
            fail(f"foreign Origin refused with {exc.response.status_code}, expected 403")
    print("proxy probe: foreign Origin refused with 403 before the upgrade")

    async with connect(url, ssl=context, origin=f"https://{host}", open_timeout=10) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if first.get("type") != "challenge":
            fail(f"first frame is {first.get('type')!r}, expected 'challenge'")
        print("proxy probe: WebSocket upgraded through TLS proxy, challenge received")
        ready.write_text("ready")
        try:
            await asyncio.wait_for(ws.recv(), 20)
            fail("Carnet sent a frame instead of closing")
        except ConnectionClosed:
            pass
        if ws.close_code != GOING_AWAY:
            fail(f"close code {ws.close_code}, expected {GOING_AWAY} on SIGTERM")
    print("proxy probe: SIGTERM closed the WebSocket with 1001 through the proxy")


def main() -> None:
    host, cafile, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    context = ssl.create_default_context(cafile=cafile)
    asyncio.run(probe(host, context, ready))


if __name__ == "__main__":
    main()
