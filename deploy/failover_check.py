"""Fail-over check for ``deploy/local-cluster``: kill -9 a node mid-exchange.

Usage (operator token in ``CARNET_TOKEN``)::

    python deploy/failover_check.py --url https://carnet.test \\
        --node PID=http://127.0.0.1:8080 --node PID=http://127.0.0.2:8080

Through the proxy at ``--url``, with the Python SDK: two throw-away staff
members of the sandbox school (the one ``carnet smoke`` uses) enrol one device
each and keep it connected. Both send ``--messages`` messages to each other in
their direct conversation; after a third of them, the node holding a device's
WebSocket (read from each node's ``carnet_connected_devices``) is killed with
SIGKILL. The devices must reconnect through the proxy to the surviving node,
and every message must reach the application exactly once, in order. The two
people are deleted at the end, whatever happened. One line per step; exit
status 0 only if every step passed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import sys
import time
import urllib.request
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp

from client.client import Client
from client.http import HttpApi

T = TypeVar("T")
SANDBOX_UAI = "0000000S"
SANDBOX_NAME = "Carnet smoke test"
STEP_TIMEOUT = 60.0


class CheckFailed(Exception):
    """A step failed."""


def say(line: str) -> None:
    print(f"failover: {line}", flush=True)


def connected_devices(metrics_url: str) -> int | None:
    """``carnet_connected_devices`` of one node, or None if it does not answer."""
    try:
        with urllib.request.urlopen(metrics_url + "/metrics", timeout=2) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return None
    match = re.search(r"^carnet_connected_devices (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else None


async def step(name: str, work: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            result = await work
    except CheckFailed as exc:
        raise CheckFailed(f"{name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the step is reported as such
        raise CheckFailed(f"{name}: {type(exc).__name__}: {exc}") from None
    say(f"ok   {name}")
    return result


async def wait_for(predicate: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise CheckFailed(f"timed out waiting for {what}")


async def run(url: str, token: str, nodes: list[tuple[int, str]], count: int) -> None:
    tag = secrets.token_hex(4)
    created: list[str] = []
    clients: list[Client] = []
    async with aiohttp.ClientSession() as session:
        admin = HttpApi(url, session)
        try:
            await exchange(admin, url, token, tag, nodes, count, created, clients)
        finally:
            for client in clients:
                await client.close()
            for person_id in created:
                await admin.admin_delete_person(token, person_id)
            if created:
                say("ok   deleted the sandbox people")


async def exchange(
    admin: HttpApi,
    url: str,
    token: str,
    tag: str,
    nodes: list[tuple[int, str]],
    count: int,
    created: list[str],
    clients: list[Client],
) -> None:
    school = {"uai": SANDBOX_UAI, "name": SANDBOX_NAME, "timezone": "Europe/Paris"}
    people = [
        {
            "uai": SANDBOX_UAI,
            "external_id": f"failover-{side}-{tag}",
            "role": "staff",
            "given_name": "Failover",
            "family_name": f"{side.upper()} {tag}",
        }
        for side in ("a", "b")
    ]

    async def create() -> list[str]:
        await admin.admin_import_people(token, [school], people)
        listed = await admin.admin_school_people(token, SANDBOX_UAI)
        by_external = {str(p.get("external_id")): str(p.get("id")) for p in listed}
        ids = [by_external.get(str(p["external_id"]), "") for p in people]
        created.extend(i for i in ids if i)
        if not all(ids):
            raise CheckFailed("the imported people are not listed")
        return ids

    ids = await step("two sandbox people created through the proxy", create())

    async def enrol() -> None:
        for person_id in ids:
            code = await admin.admin_enrolment_code(token, person_id)
            client = await Client.enrol(url, code, None, reconnect_attempts=10, backoff_max=2.0)
            clients.append(client)
            await client.connect()
        await wait_for(
            lambda: sum(connected_devices(m) or 0 for _, m in nodes) == 2,
            "both devices counted by the nodes",
        )

    await step("two devices enrolled and connected through the proxy", enrol())
    a, b = clients
    placement = {m: connected_devices(m) or 0 for _, m in nodes}
    say(
        "     devices per node before the kill: "
        + ", ".join(f"{m}={n}" for m, n in placement.items())
    )
    victim_pid, victim = next((p, m) for p, m in nodes if placement[m] > 0)
    survivors = [m for _, m in nodes if m != victim]

    conversation = await step("direct conversation opened", a.direct(b.person_id))
    sent = {
        a.device_id: [f"a->b {tag} {i}" for i in range(count)],
        b.device_id: [f"b->a {tag} {i}" for i in range(count)],
    }
    progress = {"sent": 0}
    half_way = asyncio.Event()

    async def sender(client: Client) -> None:
        for text in sent[client.device_id]:
            await client.send(conversation.id, text)
            progress["sent"] += 1
            if progress["sent"] >= (2 * count) // 3:
                half_way.set()
            await asyncio.sleep(0.05)

    async def receiver(client: Client, expected: int) -> list[str]:
        bodies: list[str] = []
        while len(bodies) < expected:
            message = await client.next_message(STEP_TIMEOUT)
            bodies.append(message.body)
        return bodies

    async def kill_mid_exchange() -> None:
        await half_way.wait()
        os.kill(victim_pid, signal.SIGKILL)
        say(f"     SIGKILL to node {victim} (pid {victim_pid}) after {progress['sent']} sends")

    async def run_exchange() -> tuple[list[str], list[str]]:
        async with asyncio.TaskGroup() as group:
            got_b = group.create_task(receiver(b, count))
            got_a = group.create_task(receiver(a, count))
            group.create_task(kill_mid_exchange())
            group.create_task(sender(a))
            group.create_task(sender(b))
        return got_b.result(), got_a.result()

    got_by_b, got_by_a = await step(
        f"{count} messages each way while a node was killed", run_exchange()
    )

    async def check_reconnected() -> None:
        await wait_for(lambda: connected_devices(victim) is None, "the killed node to be gone")
        await wait_for(
            lambda: sum(connected_devices(m) or 0 for m in survivors) == 2,
            "both devices on the surviving node",
        )

    await step(
        "both devices reconnected through the proxy to the surviving node", check_reconnected()
    )

    async def check_exactly_once() -> None:
        await asyncio.sleep(1.0)  # a late extra copy would be queued by now
        for who, got, want in (
            ("b", got_by_b, sent[a.device_id]),
            ("a", got_by_a, sent[b.device_id]),
        ):
            if got != want:
                missing = sorted(set(want) - set(got))
                extra = [x for x in got if got.count(x) > 1 or x not in want]
                raise CheckFailed(
                    f"{who} got {len(got)} messages, missing {missing[:5]},"
                    f" duplicated or unknown {extra[:5]}, or out of order"
                )
            if not await_nothing_more(a if who == "a" else b):
                raise CheckFailed(f"{who} received a message twice at the application level")
        if a.failures or b.failures:
            raise CheckFailed("undecryptable envelopes arrived")

    await step("every message arrived exactly once, in order, and decrypted", check_exactly_once())
    say(
        f"     duplicates dropped by the SDK (redeliveries after reconnect): "
        f"a={a.duplicates} b={b.duplicates}"
    )


def await_nothing_more(client: Client) -> bool:
    """True if nothing more is waiting for the application (no extra copy)."""
    return client.queued == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the proxy's https URL")
    parser.add_argument("--node", action="append", required=True, help="PID=METRICS_BASE_URL")
    parser.add_argument("--messages", type=int, default=20, help="messages each way")
    args = parser.parse_args()
    token = os.environ.get("CARNET_TOKEN", "")
    if not token:
        say("FAIL setup: set CARNET_TOKEN to an operator token")
        return 2
    nodes = [(int(pid), base.rstrip("/")) for pid, base in (n.split("=", 1) for n in args.node)]
    try:
        asyncio.run(run(args.url, token, nodes, args.messages))
    except CheckFailed as exc:
        say(f"FAIL {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - reported, then a non-zero status
        say(f"FAIL {type(exc).__name__}: {exc}")
        return 1
    say("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
