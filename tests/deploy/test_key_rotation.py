"""``carnet admin rotate-keys`` against a real ``carnet serve`` process.

A node loads its server keys once, at start (server/secrets_state.py): after a
rotation it keeps signing with the old key until it restarts, then signs with
the new one, and stamps and session tokens made with the old key still verify.
docs/operations.md ("Key rotation") tells operators to restart every node, one
at a time, after rotating.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from pymongo import MongoClient

from client.client import Client
from client.http import HttpApi
from client.messages import Message
from crypto.encoding import b64url_encode
from tests.support.servers import start_server_process

SANDBOX = {"uai": "0000000S", "name": "Carnet smoke test", "timezone": "Europe/Paris"}

pytestmark = pytest.mark.timeout(180)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def serve(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``carnet serve`` on a fixed port (the clients keep their URL across restarts)."""
    return start_server_process(data_dir, env=env, port=port).process


@pytest.fixture
def keys_db(database_uri: str) -> Iterator[tuple[dict[str, str], Any]]:
    name = f"t_rot_{uuid.uuid4().hex[:10]}"
    env = {"CARNET_MONGODB_URI": database_uri, "CARNET_DB_NAME": name}
    client: MongoClient[dict[str, Any]] = MongoClient(database_uri)
    try:
        yield env, client[name]["server_keys"]
    finally:
        client.drop_database(name)
        client.close()


def stamp_key_id(stamp: bytes | None) -> int:
    assert stamp is not None
    return int.from_bytes(stamp[:4], "big")


def report_of(message: Message) -> dict[str, Any]:
    evidence = message.evidence
    assert evidence.stamp is not None
    return {
        "conversation": evidence.conversation,
        "seq": message.seq,
        "plaintext": b64url_encode(evidence.body),
        "franking_key": b64url_encode(evidence.franking_key),
        "commitment": b64url_encode(evidence.commitment),
        "stamp": b64url_encode(evidence.stamp),
        "sender_device": evidence.sender_device,
        "ts": evidence.timestamp_ms,
    }


async def test_rotated_keys_sign_after_restart_and_old_ones_still_verify(
    keys_db: tuple[dict[str, str], Any], tmp_path: Path
) -> None:
    env, server_keys = keys_db
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    node = serve(tmp_path / "node", port, env)
    made = cli(env, "admin", "create-token", "--role", "operator", "--data-dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()

    clients: list[Client] = []
    async with aiohttp.ClientSession() as http:
        admin = HttpApi(url, http)
        people = [
            {
                "uai": SANDBOX["uai"],
                "external_id": f"rot-{side}",
                "role": "staff",
                "given_name": "Rotation",
                "family_name": side,
            }
            for side in ("a", "b")
        ]
        await admin.admin_import_people(token, [SANDBOX], people)
        listed = {
            p["external_id"]: p["id"] for p in await admin.admin_school_people(token, "0000000S")
        }
        try:
            for side in ("a", "b"):
                code = await admin.admin_enrolment_code(token, listed[f"rot-{side}"])
                client = await Client.enrol(url, code, None, backoff_max=1.0, reconnect_attempts=30)
                clients.append(client)
                await client.connect()
            a, b = clients
            direct = await a.direct(b.person_id)

            before = await direct.send("before the rotation")
            got_before = await b.next_message(20)
            assert stamp_key_id(before.stamp) == 1 and got_before.body == "before the rotation"
            old_session = b.session_token
            assert old_session.split(".")[2] == "1"

            # Rotate both purposes with the real CLI, beside the running node.
            outputs = []
            for purpose in ("franking", "device-session"):
                rotated = cli(
                    env, "admin", "rotate-keys", "--purpose", purpose, "--data-dir", str(tmp_path)
                )
                assert rotated.returncode == 0, rotated.stderr
                assert rotated.stdout == f"{purpose} key 2\n"
                outputs.append(rotated.stdout + rotated.stderr)
            rotated_purposes = {"purpose": {"$in": ["franking", "device-session"]}}
            secrets = [bytes(doc["secret"]) for doc in server_keys.find(rotated_purposes)]
            assert len(secrets) == 4
            for text in outputs:  # never a secret, in any common encoding
                for secret in secrets:
                    for shown in (secret.hex(), b64url_encode(secret), secret.hex().upper()):
                        assert shown not in text

            # The running node loaded its keys at start: it still signs with key 1.
            still = await direct.send("rotated, node not restarted")
            await b.next_message(20)
            assert stamp_key_id(still.stamp) == 1

            # Restart (SIGTERM drains with 1001, the clients reconnect by themselves).
            node.terminate()
            assert node.wait(30) == 0
            node = serve(tmp_path / "node", port, env)
            after = await direct.send("after the restart")
            got_after = await b.next_message(30)
            assert stamp_key_id(after.stamp) == 2 and got_after.body == "after the restart"
            assert b.session_token.split(".")[2] == "2"

            # Old and new stamps verify on the restarted node; so does the old session.
            for message in (got_before, got_after):
                async with http.post(
                    f"{url}/v1/reports",
                    json=report_of(message),
                    headers={"Authorization": f"Bearer {old_session}"},
                ) as response:
                    body = await response.json()
                    assert (response.status, body["proof"]) == (201, "verified"), body
            forged = {**report_of(got_after), "plaintext": b64url_encode(b"something else")}
            async with http.post(
                f"{url}/v1/reports",
                json=forged,
                headers={"Authorization": f"Bearer {b.session_token}"},
            ) as response:
                assert (await response.json())["proof"] == "unverified"
        finally:
            for client in clients:
                await client.close()
            for person_id in listed.values():
                await admin.admin_delete_person(token, person_id)
    node.terminate()
    assert node.wait(30) == 0


def test_rotate_keys_refuses_an_unknown_purpose(tmp_path: Path) -> None:
    refused = cli({}, "admin", "rotate-keys", "--purpose", "bridge", "--data-dir", str(tmp_path))
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
    refused = cli(
        {},
        "admin",
        "rotate-keys",
        "--purpose",
        "franking",
        "--keep",
        "-1",
        "--data-dir",
        str(tmp_path),
    )
    assert refused.returncode == 2 and "--keep" in refused.stderr
