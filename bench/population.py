"""Enrolled devices for a run, made over Carnet's real admin and enrolment API.

Bench schools of 1000 people each; ``n`` people imported in one ``POST /v1/admin/directory/people``;
one enrolment code each (``POST /v1/admin/people/{id}/enrolment-codes``);
one device each (``POST /v1/enrol`` with a fresh Ed25519 key). Valid codes
never count against the enrolment brute-force limits.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from bench.servers import ServerProcess
from bench.wire import BenchError, Credentials, b64e

SCHOOL_SIZE = 1000
"""People per bench school: the admin listing returns at most 1000 people."""
CONCURRENCY = 32
IMPORT_CHUNK = 10_000


async def enrol_devices(
    server: ServerProcess, count: int, prefix: str, role: str = "parent"
) -> list[Credentials]:
    """Create ``count`` people named ``<prefix><n>`` and enrol one device each.

    Raises:
        BenchError: the API refused a step.
    """
    headers = {"Authorization": f"Bearer {server.operator_token}"}
    schools = [_uai(k) for k in range((count + SCHOOL_SIZE - 1) // SCHOOL_SIZE)]
    async with aiohttp.ClientSession(headers=headers) as http:
        for start in range(0, count, IMPORT_CHUNK):
            people = [
                {
                    "uai": _uai(n // SCHOOL_SIZE),
                    "external_id": f"{prefix}{n}",
                    "role": role,
                    "given_name": "Bench",
                    "family_name": f"{prefix}{n}",
                }
                for n in range(start, min(count, start + IMPORT_CHUNK))
            ]
            body = {
                "schools": [{"uai": u, "name": "Banc d'essai"} for u in schools],
                "people": people,
            }
            await _json(http, "POST", server.url + "/v1/admin/directory/people", body, 200)
        wanted = {f"{prefix}{n}" for n in range(count)}
        ids: list[str] = []
        for uai in schools:  # the listing returns at most 1000 people per school
            listing = await _json(http, "GET", f"{server.url}/v1/admin/schools/{uai}/people")
            ids += [p["id"] for p in listing["people"] if p["external_id"] in wanted]
        if len(ids) != count:
            raise BenchError(f"{len(ids)} of {count} people listed after the import")
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(person_id: str) -> Credentials:
            async with gate:
                url = f"{server.url}/v1/admin/people/{person_id}/enrolment-codes"
                code = (await _json(http, "POST", url, {}, 201))["code"]
                seed = os.urandom(32)
                key = bytes(SigningKey(seed).verify_key)
                body = {"code": code, "identity_key": b64e(key)}
                device = await _json(http, "POST", server.url + "/v1/enrol", body, 201)
                return Credentials(device["device_id"], seed)

        return list(await asyncio.gather(*(one(i) for i in ids)))


def _uai(k: int) -> str:
    return f"{k + 1:07d}B"


async def _json(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, status: int = 200
) -> Any:
    async with http.request(method, url, json=body) as response:
        data = await response.json()
        if response.status != status:
            raise BenchError(f"{method} {url}: {response.status} {data}")
        return data
