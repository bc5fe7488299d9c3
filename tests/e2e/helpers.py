"""Helpers for the end-to-end tests: SDK clients against a real running server."""

from __future__ import annotations

from pathlib import Path

from client import Client
from client.keystore import MINIMAL
from tests.support.servers import RunningServer

PASSPHRASE = "correct horse battery staple"


async def enrolled_client(
    server: RunningServer, tmp_path: Path, external_id: str, name: str | None = None, **options: object
) -> Client:
    """Enrol a new device for a demo person (a fresh code when the demo one is spent)."""
    person = server.person(external_id)
    code = person["code"]
    path = tmp_path / f"{name or external_id}.keystore"
    try:
        return await Client.enrol(
            server.url, code, path, PASSPHRASE, limits=MINIMAL, backoff_initial=0.05, **options
        )
    except Exception:
        code = await fresh_code(server, person["person_id"])
        return await Client.enrol(
            server.url, code, path, PASSPHRASE, limits=MINIMAL, backoff_initial=0.05, **options
        )


async def fresh_code(server: RunningServer, person_id: str) -> str:
    """Issue a new enrolment code through the admin API."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/admin/people/{person_id}/enrolment-codes",
            headers={"Authorization": f"Bearer {server.operator_token}"},
        ) as response:
            body = await response.json()
            assert response.status == 201, body
            return str(body["code"])
