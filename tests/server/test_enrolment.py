"""Enrolment codes: single use, expiry, lockout, and brute force answered with 429."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.codes import generate_code, parse_code
from tests.support.devices import WireDevice, b64
from tests.support.servers import RunningServer, running_server


async def enrol(
    http: aiohttp.ClientSession, server: RunningServer, code: str, key: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    key = key if key is not None else bytes(WireDevice().public_key)
    async with http.post(
        server.url + "/v1/enrol", json={"code": code, "identity_key": b64(key)}
    ) as r:
        return r.status, await r.json()


def test_codes_round_trip_and_forgive_typing() -> None:
    code = generate_code()
    assert len(code.text) == 19 and code.text.count("-") == 3
    assert parse_code(code.text.lower().replace("-", " ")) == code
    assert parse_code("O1IL-" + "0" * 12) == parse_code("0111-" + "0" * 12)
    assert parse_code("too-short") is None
    assert parse_code("UUUU-UUUU-UUUU-UUUU") is None


async def test_a_code_enrols_once(server: RunningServer, http: aiohttp.ClientSession) -> None:
    code = server.person("E001")["code"]
    status, body = await enrol(http, server, code)
    assert status == 201 and body["kind"] == "app"
    assert body["person_id"] == server.person("E001")["person_id"]
    status, body = await enrol(http, server, code)
    assert (status, body["error"]["code"]) == (400, "invalid_code")


async def test_an_expired_code_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    server.clock.advance(timedelta(days=server.settings.enrol_code_days, seconds=1))
    status, body = await enrol(http, server, server.person("E002")["code"])
    assert (status, body["error"]["code"]) == (400, "invalid_code")


async def test_wrong_secrets_lock_the_code(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    code = parse_code(server.person("E003")["code"])
    assert code is not None
    wrong = code.lookup + ("0" * 12 if code.secret != "0" * 12 else "1" * 12)
    for _ in range(server.settings.enrol_attempts_per_code):
        status, _body = await enrol(http, server, wrong)
        assert status == 400
    state = await server.store.enrolment.code_state(code.lookup)
    assert state is not None and state["locked"] is True
    status, body = await enrol(http, server, server.person("E003")["code"])
    assert (status, body["error"]["code"]) == (400, "invalid_code")


async def test_same_identity_key_cannot_enrol_twice(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    key = WireDevice().public_key
    assert (await enrol(http, server, server.person("R001")["code"], key))[0] == 201
    status, body = await enrol(http, server, server.person("R002")["code"], key)
    assert (status, body["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "x"}, "identity_key"),
        ({"code": "x", "identity_key": "not base64!"}, "identity_key"),
        ({"code": "x", "identity_key": b64(b"\x01" * 31)}, "identity_key"),
        ({"code": "x", "identity_key": b64(b"\x01" * 32), "extra": 1}, "extra"),
        ({"code": "", "identity_key": b64(b"\x01" * 32)}, "code"),
    ],
)
async def test_invalid_bodies_name_the_field(
    server: RunningServer, http: aiohttp.ClientSession, payload: dict[str, Any], field: str
) -> None:
    async with http.post(server.url + "/v1/enrol", json=payload) as r:
        body = await r.json()
    assert r.status == 422 and body["error"]["code"] == "invalid_request"
    assert body["error"]["fields"][0]["field"] == field


async def test_not_a_curve_point_is_refused(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, body = await enrol(http, server, server.person("R001")["code"], b"\xff" * 32)
    assert (status, body["error"]["code"]) == (422, "invalid_request")


async def test_brute_force_from_one_address_hits_429(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    limit = server.settings.enrol_failures_per_address
    for _ in range(limit):
        status, _ = await enrol(http, server, generate_code().text)
        assert status == 400
    async with http.post(
        server.url + "/v1/enrol",
        json={"code": generate_code().text, "identity_key": b64(b"\x01" * 32)},
    ) as r:
        body = await r.json()
        assert r.status == 429 and body["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) == server.settings.enrol_window_seconds
    # Even the right code is refused while the address is throttled...
    status, _ = await enrol(http, server, server.person("R003")["code"])
    assert status == 429
    # ...and accepted once the window is over.
    server.clock.advance(timedelta(seconds=server.settings.enrol_window_seconds + 1))
    status, _ = await enrol(http, server, server.person("R003")["code"])
    assert status == 201


async def test_global_failures_are_limited_across_addresses(
    database_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with running_server(
        database_uri,
        tmp_path,
        enrol_failures_per_address=1000,
        enrol_failures_global=3,
        trusted_proxy_hops=1,
    ) as server:
        for i in range(3):
            async with http.post(
                server.url + "/v1/enrol",
                json={"code": generate_code().text, "identity_key": b64(WireDevice().public_key)},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ) as r:
                assert r.status == 400
        async with http.post(
            server.url + "/v1/enrol",
            json={
                "code": server.person("R001")["code"],
                "identity_key": b64(WireDevice().public_key),
            },
            headers={"X-Forwarded-For": "198.51.100.7"},
        ) as r:
            assert r.status == 429
