"""Helpers for the end-to-end tests: SDK clients against a real running server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from client import ApiError, Client
from client.keystore import MINIMAL
from tests.support.servers import RunningServer

PASSPHRASE = "correct horse battery staple"


async def enrolled_client(
    server: RunningServer,
    tmp_path: Path,
    external_id: str,
    name: str | None = None,
    **options: Any,
) -> Client:
    """Enrol a device for a demo person: the demo code first, then fresh admin codes."""
    person = server.person(external_id)
    path = tmp_path / f"{name or external_id}.keystore"
    settings: dict[str, Any] = {"limits": MINIMAL, "backoff_initial": 0.05, **options}
    try:
        return await Client.enrol(server.url, person["code"], path, PASSPHRASE, **settings)
    except ApiError as exc:
        assert exc.code == "invalid_code", exc
    code = await fresh_code(server, person["person_id"])
    return await Client.enrol(server.url, code, path, PASSPHRASE, **settings)


async def fresh_code(server: RunningServer, person_id: str) -> str:
    """Issue a new enrolment code through the admin API."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/admin/people/{person_id}/enrolment-codes",
            headers={"Authorization": f"Bearer {server.operator_token}"},
        ) as response:
            body = await response.json()
            assert response.status == 201, body
            return str(body["code"])


async def quiet(*clients: Client, seconds: float = 0.3) -> None:
    """Assert that no client receives anything more (no duplicate, nothing stray)."""
    import asyncio

    await asyncio.sleep(seconds)
    for each in clients:
        assert each.queued == 0, f"{each} got an unexpected message"
