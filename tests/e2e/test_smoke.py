"""``carnet smoke`` against a real in-process server."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp

from client.smoke import SANDBOX_UAI, run_smoke
from tests.support.servers import RunningServer


async def sandbox_people(server: RunningServer) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/v1/admin/schools/{SANDBOX_UAI}/people",
            headers={"Authorization": f"Bearer {server.operator_token}"},
        ) as response:
            if response.status == 404:
                return []
            body = await response.json()
            assert response.status == 200, body
            people: list[dict[str, object]] = body["people"]
            return people


async def test_smoke_passes_and_leaves_nothing_behind(server: RunningServer) -> None:
    out = io.StringIO()
    status = await run_smoke(server.url, server.operator_token, out)
    lines = out.getvalue().splitlines()
    assert status == 0, out.getvalue()
    assert lines and all(line.startswith("ok   ") for line in lines), lines
    assert lines[-1] == "ok   delete sandbox people"
    assert await sandbox_people(server) == []
    assert await server.store.db["devices"].count_documents({}) == 0
    assert await server.store.db["cursors"].count_documents({}) == 0
    # No stored message is addressed to anyone any more, and no pairwise
    # ciphertext is left (the devices went with their people).
    messages = server.store.messages.collection
    assert await messages.count_documents({"recipients": {"$ne": []}}) == 0
    assert await messages.count_documents({"pairwise": {"$nin": [None, {}]}}) == 0


async def test_smoke_with_a_bad_token_fails_cleanly(server: RunningServer, tmp_path: Path) -> None:
    out = io.StringIO()
    status = await run_smoke(server.url, "carnet_operator_not-a-real-token", out)
    assert status == 1
    assert out.getvalue().startswith("FAIL create sandbox people:"), out.getvalue()
