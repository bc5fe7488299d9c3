"""People, devices, policies and conversations for a run, over Carnet's real API.

- People: one ``POST /v1/admin/directory/people`` per 10,000 records, in bench
  schools of at most 1000 people (the admin listing returns at most 1000).
- Devices: one enrolment code each (``POST /v1/admin/people/{id}/enrolment-codes``),
  one ``POST /v1/enrol`` with a fresh Ed25519 key. Valid codes never count
  against the enrolment brute-force limits.
- Rate limits: a load test sends far more than a person may send in a minute,
  so each bench school's policy is revised through the policy API (operator
  token) to buckets of 100,000, exactly like ``tests/support/policy.py``
  (docs/moderation.md, "Rate limits"). The contact policy, the second-adult
  rule and quiet hours are left at their defaults.
- Conversations: ``POST /v1/conversations`` with the creator's device session
  token (from its ``ready`` frame); the contact policy decides as for anyone.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from bench.servers import ServerProcess
from bench.wire import BenchError, Credentials, b64e, login

SCHOOL_SIZE = 1000
"""People per bench school: the admin listing returns at most 1000 people."""
CONCURRENCY = 32
CODE_CONCURRENCY = 4
"""Enrolment codes issued at once (each is an audited, hash-chained admin action)."""
CODE_ATTEMPTS = 20
IMPORT_CHUNK = 10_000
ROLES = ("pupil", "parent", "teacher", "staff", "director")
GENEROUS = {"capacity": 100_000, "per_minute": 100_000}


def uai(k: int) -> str:
    """The ``k``-th bench school's UAI code."""
    return f"{k + 1:07d}B"


@dataclass(frozen=True)
class Someone:
    """A person to import: external id, role and school; classes for teachers and pupils."""

    external_id: str
    role: str
    school: int
    classes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        return {
            "uai": uai(self.school),
            "external_id": self.external_id,
            "role": self.role,
            "given_name": "Bench",
            "family_name": self.external_id,
            "classes": list(self.classes),
        }


@dataclass
class Population:
    """The enrolled devices of a run, by external id."""

    server: ServerProcess
    devices: dict[str, Credentials] = field(default_factory=dict)


async def enrol(server: ServerProcess, people: list[Someone], receipts: bool = True) -> Population:
    """Import ``people``, relax their schools' rate limits, enrol one device each.

    ``receipts=False`` turns the schools' delivered and read receipts off
    (``PUT /v1/admin/schools/{uai}/settings``), as a school may.

    Raises:
        BenchError: the API refused a step.
    """
    schools = sorted({p.school for p in people})
    headers = {"Authorization": f"Bearer {server.operator_token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for start in range(0, len(people), IMPORT_CHUNK):
            body = {
                "schools": [{"uai": uai(k), "name": "Banc d'essai"} for k in schools],
                "people": [p.record() for p in people[start : start + IMPORT_CHUNK]],
            }
            await _json(http, "POST", server.url + "/v1/admin/directory/people", body, 200)
        wanted = {p.external_id for p in people}
        ids: dict[str, str] = {}
        for k in schools:  # the listing returns at most 1000 people per school
            listing = await _json(http, "GET", f"{server.url}/v1/admin/schools/{uai(k)}/people")
            ids.update({p["external_id"]: p["id"] for p in listing["people"]})
            await relax_rate_limits(http, server.url, uai(k))
            if not receipts:
                off = {"delivered_receipts": False, "read_receipts": False}
                url = f"{server.url}/v1/admin/schools/{uai(k)}/settings"
                await _json(http, "PUT", url, off, 200)
        missing = wanted - set(ids)
        if missing:
            raise BenchError(f"{len(missing)} of {len(wanted)} people not listed after the import")
        gate, codes = asyncio.Semaphore(CONCURRENCY), asyncio.Semaphore(CODE_CONCURRENCY)

        async def one(external_id: str) -> tuple[str, Credentials]:
            person_id = ids[external_id]
            async with gate:
                url = f"{server.url}/v1/admin/people/{person_id}/enrolment-codes"
                async with codes:
                    code = (await _retried(http, url))["code"]
                seed = os.urandom(32)
                key = bytes(SigningKey(seed).verify_key)
                body = {"code": code, "identity_key": b64e(key)}
                device = await _json(http, "POST", server.url + "/v1/enrol", body, 201)
                return external_id, Credentials(device["device_id"], seed, device["person_id"])

        enrolled = await asyncio.gather(*(one(p.external_id) for p in people))
    return Population(server, dict(enrolled))


async def relax_rate_limits(http: aiohttp.ClientSession, url: str, school: str) -> None:
    """Raise every rate-limit bucket of ``school`` (as ``tests/support/policy.py`` does).

    Raises:
        BenchError: the policy API refused.
    """
    current = await _json(http, "GET", f"{url}/v1/schools/{school}/policy")
    policy = {
        "version": current["policy"]["version"] + 1,
        "rate_limits": {
            "person": {role: GENEROUS for role in ROLES},
            "role": {role: GENEROUS for role in ROLES},
            "school": GENEROUS,
        },
    }
    await _json(http, "PUT", f"{url}/v1/schools/{school}/policy", policy, 200)


async def create_conversations(
    server: ServerProcess, creator: Credentials, specs: list[dict[str, Any]]
) -> list[str]:
    """Log ``creator`` in once and create each conversation of ``specs``; their ids.

    Each spec is a ``POST /v1/conversations`` body (``kind``, ``members``,
    ``class_id``...). A direct conversation that exists already is found, not
    created twice.

    Raises:
        BenchError: the login or a creation was refused (e.g. by the contact policy).
    """
    async with aiohttp.ClientSession() as http:
        ws, ready = await login(http, server.ws_url, creator)
        try:
            headers = {"Authorization": f"Bearer {ready['session_token']}"}
            gate = asyncio.Semaphore(8)

            async def one(spec: dict[str, Any]) -> str:
                async with (
                    gate,
                    http.post(
                        server.url + "/v1/conversations", json=spec, headers=headers
                    ) as response,
                ):
                    body = await response.json()
                    if response.status not in (200, 201):
                        raise BenchError(f"conversation {spec['kind']}: {response.status} {body}")
                    conversation_id: str = body["id"]
                    return conversation_id

            return list(await asyncio.gather(*(one(s) for s in specs)))
        finally:
            await ws.close()


async def _retried(http: aiohttp.ClientSession, url: str) -> Any:
    """Issue an enrolment code, retrying (bounded) while the audit log is contended.

    Each code issued is an audited admin action; concurrent ones may collide
    on the hash-chained audit log, which the server answers with a 500
    (reported to the lead: it should retry itself or answer 503).

    Raises:
        BenchError: still refused after the last attempt.
    """
    for attempt in range(CODE_ATTEMPTS):
        async with http.post(url, json={}) as response:
            data = await response.json()
            if response.status == 201:
                return data
            if response.status < 500 or attempt == CODE_ATTEMPTS - 1:
                raise BenchError(f"POST {url}: {response.status} {data}")
        await asyncio.sleep(0.01 * (attempt + 1))
    raise BenchError(f"POST {url}: no attempt left")


async def _json(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, status: int = 200
) -> Any:
    async with http.request(method, url, json=body) as response:
        data = await response.json()
        if response.status != status:
            raise BenchError(f"{method} {url}: {response.status} {data}")
        return data
