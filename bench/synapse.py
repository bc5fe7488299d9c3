"""Matrix Synapse on the ``direct`` scenario (issue 9, baseline 3).

``python -m bench synapse-setup`` makes ``bench/.synapse-venv`` (its own
virtual environment, gitignored) and installs ``matrix-synapse`` into it with
that environment's pip. A run then starts Synapse from it on a fresh data
directory with a generated configuration, changed as follows: one HTTP
listener on 127.0.0.1 (client API only), SQLite, every ``rc_*`` rate limit
raised out of reach, registration open without verification (benchmark
users are made with ``m.login.dummy``), presence off, no trusted key servers
and no stats reporting (nothing leaves the machine).

The load is the same as Carnet's ``direct``: pairs of users, each pair in a
private room, each user sending to its partner with a bounded window of
in-flight ``PUT /rooms/{id}/send`` and receiving through ``/sync`` long-polls.
The body carries the same stamp as Carnet's ciphertext (send→deliver latency).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.pool import merge
from bench.procstat import CpuMeter
from bench.servers import HOST, free_port
from bench.wire import BenchError, b64d, b64e, latency_ms, stamp_ns, stamped

VENV = Path(__file__).parent / ".synapse-venv"
PYTHON = VENV / "bin" / "python"
READY_TIMEOUT = 120.0
SYNC_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
            "timeline": {"limit": 1000, "types": ["m.room.message"]},
        },
    }
)
_UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
_CONFIGURE = """
import sys, yaml
path, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = yaml.safe_load(open(path))
unlimited = UNLIMITED
cfg.update(
    listeners=[{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
    database={"name": "sqlite3", "args": {"database": data + "/homeserver.db"}},
    enable_registration=True, enable_registration_without_verification=True,
    report_stats=False, trusted_key_servers=[], suppress_key_server_warning=True,
    presence={"enabled": False}, url_preview_enabled=False,
    rc_message=unlimited, rc_registration=unlimited, rc_room_creation=unlimited,
    rc_login={"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
    rc_joins={"local": unlimited, "remote": unlimited},
    rc_invites={"per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited},
    rc_joins_per_room=unlimited, rc_presence={"per_user": unlimited},
    rc_delayed_event_mgmt=unlimited, rc_reports=unlimited,
)
yaml.safe_dump(cfg, open(path, "w"))
""".replace("UNLIMITED", repr(_UNLIMITED))


def setup(reinstall: bool = False) -> str:
    """Create the virtual environment and install Synapse into it.

    Raises:
        BenchError: the environment or the install failed (pip's output says why).
    """
    if reinstall or not PYTHON.exists():
        _check([sys.executable, "-m", "venv", "--clear", str(VENV)])
    if reinstall or not _installed():
        _check([str(PYTHON), "-m", "pip", "install", "--quiet", "matrix-synapse"])
    version = subprocess.run(
        [str(PYTHON), "-c", "import synapse; print(synapse.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return version.stdout.strip()


def _installed() -> bool:
    probe = subprocess.run([str(PYTHON), "-c", "import synapse"], capture_output=True, check=False)
    return probe.returncode == 0


def _check(argv: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv[:4])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


class SynapseServer:
    """One Synapse homeserver on a fresh data directory, loopback only."""

    def __init__(self) -> None:
        if not _installed():
            raise BenchError("Synapse is not installed: run `python -m bench synapse-setup`")
        self._tmp = tempfile.TemporaryDirectory(prefix="carnet-bench-synapse-")
        data = Path(self._tmp.name)
        config = data / "homeserver.yaml"
        self.port = free_port()
        _check(
            [
                str(PYTHON),
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                "bench.localhost",
                "--config-path",
                str(config),
                "--data-directory",
                str(data),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=data,  # the generated log configuration names files relative to it
        )
        _check([str(PYTHON), "-c", _CONFIGURE, str(config), str(self.port), str(data)])
        self.log = data / "synapse.out"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(PYTHON), "-m", "synapse.app.homeserver", "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"synapse exited {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=1):  # noqa: S310
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.stop()
        raise BenchError("synapse did not answer in time")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._tmp.cleanup()


async def make_pairs(url: str, pairs: int) -> list[list[dict[str, Any]]]:
    """Register ``2 * pairs`` users and give each pair a private room."""
    async with aiohttp.ClientSession() as http:
        gate = asyncio.Semaphore(8)

        async def register(name: str) -> dict[str, Any]:
            async with gate:
                body = {
                    "username": name,
                    "password": uuid.uuid4().hex,
                    "auth": {"type": "m.login.dummy"},
                }
                data = await _call(http, "POST", url + "/_matrix/client/v3/register", None, body)
                return {"token": data["access_token"], "user_id": data["user_id"]}

        async def pair(n: int) -> list[dict[str, Any]]:
            tag = uuid.uuid4().hex[:6]
            a, b = await register(f"a{n}_{tag}"), await register(f"b{n}_{tag}")
            async with gate:
                room = await _call(
                    http,
                    "POST",
                    url + "/_matrix/client/v3/createRoom",
                    a["token"],
                    {"preset": "private_chat", "invite": [b["user_id"]], "is_direct": True},
                )
                room_id = room["room_id"]
                await _call(http, "POST", f"{url}/_matrix/client/v3/join/{room_id}", b["token"], {})
            return [{**a, "room": room_id}, {**b, "room": room_id}]

        return list(await asyncio.gather(*(pair(n) for n in range(pairs))))


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as response:
        data = await response.json()
        if response.status != 200:
            raise BenchError(f"{method} {url}: {response.status} {data}")
        return data


# --- worker process -------------------------------------------------------------


def _worker(conn: Connection, spec: dict[str, Any]) -> None:
    conn.send(asyncio.run(asyncio.wait_for(_drive(spec), spec["hard_seconds"])))


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    url, users = spec["url"], spec["users"]
    since_ns = time.monotonic_ns()
    stats: dict[str, Any] = {
        "since_ns": since_ns,
        "sent": 0,
        "stored": 0,
        "deliveries": 0,
        "duplicates": 0,
        "messages": 0,
        "latencies_ms": [],
        "errors": {},
        "last_delivery": 0,
    }
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        since = await asyncio.gather(*(_initial_sync(http, url, u) for u in users))
        started = time.monotonic()
        deadline = started + spec["duration"]
        stop_at = deadline + spec["grace"]
        syncs = [
            asyncio.create_task(_sync_loop(http, url, u, s, stats, stop_at))
            for u, s in zip(users, since, strict=True)
        ]
        await asyncio.gather(*(_send_loop(http, url, u, stats, deadline, spec) for u in users))
        while time.monotonic() < stop_at and stats["deliveries"] < stats["stored"]:
            await asyncio.sleep(0.02)
        for task in syncs:
            task.cancel()
        await asyncio.gather(*syncs, return_exceptions=True)
    stats["started"] = started
    return stats


async def _initial_sync(http: aiohttp.ClientSession, url: str, user: dict[str, Any]) -> str:
    params = {"timeout": "0", "filter": SYNC_FILTER}
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with http.get(url + "/_matrix/client/v3/sync", params=params, headers=headers) as r:
        since: str = (await r.json())["next_batch"]
        return since


async def _sync_loop(
    http: aiohttp.ClientSession,
    url: str,
    user: dict[str, Any],
    since: str,
    stats: dict[str, Any],
    stop_at: float,
) -> None:
    headers = {"Authorization": f"Bearer {user['token']}"}
    for _ in range(1_000_000):
        if time.monotonic() >= stop_at:
            return
        params = {"timeout": "5000", "since": since, "filter": SYNC_FILTER}
        try:
            async with http.get(
                url + "/_matrix/client/v3/sync", params=params, headers=headers
            ) as response:
                data = await response.json()
        except aiohttp.ClientError:
            stats["errors"]["sync"] = stats["errors"].get("sync", 0) + 1
            continue
        since = data.get("next_batch", since)
        for room in data.get("rooms", {}).get("join", {}).values():
            for event in room.get("timeline", {}).get("events", []):
                if event.get("sender") == user["user_id"]:
                    continue
                payload = b64d(event["content"]["body"])
                if stamp_ns(payload) < stats["since_ns"]:
                    continue  # sent in an earlier phase
                stats["deliveries"] += 1
                stats["messages"] += 1
                stats["last_delivery"] = time.monotonic()
                stats["latencies_ms"].append(latency_ms(payload))


async def _send_loop(
    http: aiohttp.ClientSession,
    url: str,
    user: dict[str, Any],
    stats: dict[str, Any],
    deadline: float,
    spec: dict[str, Any],
) -> None:
    headers = {"Authorization": f"Bearer {user['token']}"}
    window = asyncio.Semaphore(spec["window"])
    interval = spec.get("interval") or 0.0
    tag = uuid.uuid4().hex[:8]
    tasks = set()

    async def put(n: int) -> None:
        body = {"msgtype": "m.text", "body": b64e(stamped(spec["size"], n))}
        target = f"{url}/_matrix/client/v3/rooms/{user['room']}/send/m.room.message/{tag}.{n}"
        try:
            async with http.put(target, json=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    stats["stored"] += 1
                else:
                    stats["errors"][str(response.status)] = (
                        stats["errors"].get(str(response.status), 0) + 1
                    )
        finally:
            window.release()

    next_at = time.monotonic() + random.uniform(0, interval)  # senders out of step
    for n in range(10_000_000):
        if interval:
            next_at += interval
            await asyncio.sleep(max(0.0, min(next_at - time.monotonic(), deadline)))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(window.acquire(), remaining)
        except TimeoutError:
            break
        stats["sent"] += 1
        task = asyncio.create_task(put(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks, return_exceptions=True)


def run_phase(
    server: SynapseServer,
    groups: list[list[dict[str, Any]]],
    workers: int,
    params: dict[str, Any],
) -> dict[str, Any]:
    """One measured phase of the direct scenario on Synapse."""
    ctx = multiprocessing.get_context("spawn")
    shares: list[list[dict[str, Any]]] = [[] for _ in range(max(1, min(workers, len(groups))))]
    for i, group in enumerate(groups):
        shares[i % len(shares)].extend(group)
    meter = CpuMeter({"server": server.pid})
    pipes, processes = [], []
    for share in shares:
        ours, theirs = ctx.Pipe()
        spec = {**params, "url": server.url, "users": share}
        process = ctx.Process(target=_worker, args=(theirs, spec), daemon=True)
        pipes.append(ours)
        processes.append(process)
    meter.start()
    for process in processes:
        process.start()
    answers = []
    for pipe in pipes:
        if not pipe.poll(params["hard_seconds"]):
            raise BenchError("a synapse load worker did not answer")
        answers.append(pipe.recv())
    meter.stop()
    for process in processes:
        process.join(10)
    totals = merge(answers)
    return {"totals": totals, "meter": meter}


if __name__ == "__main__":
    print(setup(reinstall=os.environ.get("REINSTALL") == "1"))
