"""``carnet smoke``: an end-to-end check of a live server with throw-away people.

Steps (one line each, ``ok   step`` or ``FAIL step: reason``): create a staff member
(the school's contact policy lets staff reach everyone, so no class or child links are
needed) and a parent in the sandbox school (UAI ``0000000S``, "Carnet smoke test") through the
admin API, issue their enrolment codes, enrol one device each (keys in memory only),
exchange an encrypted message both ways in their direct conversation, create a
group conversation and send a sender-key message in it, check every plaintext,
and always delete both people (devices, codes, cursors and queued ciphertexts go
with them). The exit status is 0 only if every step passed.

The operator token comes from ``CARNET_TOKEN``; nothing is written to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

import aiohttp

from client.client import Client
from client.errors import ClientError
from client.http import HttpApi

__all__ = ["SANDBOX_NAME", "SANDBOX_UAI", "add_smoke_arguments", "main", "run_smoke"]

SANDBOX_UAI = "0000000S"
SANDBOX_NAME = "Carnet smoke test"
STEP_TIMEOUT = 20.0

T = TypeVar("T")


class _Failed(Exception):
    """A step failed; already reported."""


class _Steps:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False

    async def run(self, name: str, step: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                result = await step()
        except (ClientError, TimeoutError, AssertionError, OSError) as exc:
            self.failed = True
            reason = str(exc) or type(exc).__name__
            print(f"FAIL {name}: {reason}", file=self.out, flush=True)
            raise _Failed from None
        print(f"ok   {name}", file=self.out, flush=True)
        return result


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise AssertionError(reason)


async def run_smoke(url: str, token: str, out: TextIO | None = None) -> int:
    """Run the smoke test against a server.

    Args:
        url: Server URL (``http(s)://host[:port]``).
        token: Operator token (``carnet_operator_...``).
        out: Where to print the step lines (default: stdout).

    Returns:
        0 if every step passed, 1 otherwise.
    """
    steps = _Steps(out or sys.stdout)
    tag = secrets.token_hex(4)
    created: list[str] = []
    clients: list[Client] = []
    async with aiohttp.ClientSession() as session:
        admin = HttpApi(url, session)
        try:
            await _exchange(steps, admin, url, token, tag, created, clients)
        except _Failed:
            pass
        finally:
            for client in clients:
                await client.close()
            await _cleanup(steps, admin, token, created)
    return 1 if steps.failed else 0


async def _exchange(
    steps: _Steps,
    admin: HttpApi,
    url: str,
    token: str,
    tag: str,
    created: list[str],
    clients: list[Client],
) -> None:
    people = [
        {
            "uai": SANDBOX_UAI,
            "external_id": f"smoke-s-{tag}",
            "role": "staff",
            "given_name": "Smoke",
            "family_name": f"Staff {tag}",
        },
        {
            "uai": SANDBOX_UAI,
            "external_id": f"smoke-p-{tag}",
            "role": "parent",
            "given_name": "Smoke",
            "family_name": f"Parent {tag}",
        },
    ]
    school = {"uai": SANDBOX_UAI, "name": SANDBOX_NAME, "timezone": "Europe/Paris"}

    async def create_people() -> list[str]:
        await admin.admin_import_people(token, [school], people)
        listed = await admin.admin_school_people(token, SANDBOX_UAI)
        by_external = {str(p.get("external_id")): str(p.get("id")) for p in listed}
        ids = [by_external.get(str(p["external_id"]), "") for p in people]
        created.extend(i for i in ids if i)
        _check(all(ids), "the imported people are not listed")
        return ids

    staff_id, parent_id = await steps.run("create sandbox people", create_people)

    async def codes() -> list[str]:
        return [await admin.admin_enrolment_code(token, p) for p in (staff_id, parent_id)]

    staff_code, parent_code = await steps.run("issue enrolment codes", codes)

    async def enrol_and_connect() -> tuple[Client, Client]:
        for code in (staff_code, parent_code):
            client = await Client.enrol(url, code, None, reconnect_attempts=3)
            clients.append(client)
            await client.connect()
        return clients[0], clients[1]

    staff, parent = await steps.run("enrol and log in two devices", enrol_and_connect)
    probe = secrets.token_hex(6)

    async def staff_to_parent() -> None:
        receipt = await staff.send_to_person(parent_id, f"smoke {probe} staff->parent")
        message = await parent.next_message(STEP_TIMEOUT)
        _check(message.body == f"smoke {probe} staff->parent", "wrong plaintext")
        _check(message.sender_device == staff.device_id, "wrong sender")
        stamp = message.evidence.stamp
        _check(stamp is not None and stamp == receipt.stamp, "no franking stamp, or not the same")

    await steps.run("encrypted message staff -> parent", staff_to_parent)

    async def parent_to_staff() -> None:
        await parent.send_to_person(staff_id, f"smoke {probe} parent->staff")
        message = await staff.next_message(STEP_TIMEOUT)
        _check(message.body == f"smoke {probe} parent->staff", "wrong plaintext")

    await steps.run("encrypted message parent -> staff", parent_to_staff)

    async def group() -> None:
        conversation = await staff.create_group([parent_id], f"Smoke {tag}")
        receipt = await conversation.send(f"smoke {probe} group")
        message = await parent.next_message(STEP_TIMEOUT)
        _check(message.group and message.conversation == conversation.id, "not a group message")
        _check(message.seq == receipt.seq, "not the seq the server gave")
        _check(message.body == f"smoke {probe} group", "wrong plaintext")

    await steps.run("group conversation message (sender keys)", group)

    async def no_failures() -> None:
        _check(not staff.failures and not parent.failures, "undecryptable envelopes arrived")

    await steps.run("no undecryptable envelope", no_failures)


async def _cleanup(steps: _Steps, admin: HttpApi, token: str, created: list[str]) -> None:
    if not created:
        return

    async def delete() -> None:
        for person_id in created:
            await admin.admin_delete_person(token, person_id)
        left = await admin.admin_school_people(token, SANDBOX_UAI)
        remaining = {str(p.get("id")) for p in left} & set(created)
        _check(not remaining, f"still listed: {sorted(remaining)}")

    try:
        await steps.run("delete sandbox people", delete)
    except _Failed:
        pass


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``carnet smoke``'s options to a parser.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("--url", required=True, help="server URL, e.g. https://carnet.example")


def main(args: argparse.Namespace) -> int:
    """Entry point for ``carnet smoke`` (token from ``CARNET_TOKEN``).

    Args:
        args: Parsed arguments (``url``).

    Returns:
        The exit status.
    """
    token = os.environ.get("CARNET_TOKEN", "")
    if not token:
        print("FAIL setup: set CARNET_TOKEN to an operator token", file=sys.stderr)
        return 2
    return asyncio.run(run_smoke(args.url, token))
