"""Real Carnet servers for tests: in-process on an ephemeral port, or as a subprocess.

In-process servers share the session's embedded database server (one
SecantusDB child for the whole run) with a database of their own, so tests
stay fast and isolated. Subprocess servers run ``carnet serve`` for real, for
the tests that need signals, restarts and orphan checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import unused_port

from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from server.demo import load_demo
from server.runtime import store_options
from server.services import SERVICES
from storage.database import Store

START = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


@dataclass
class RunningServer:
    url: str
    settings: Settings
    store: Store
    clock: FrozenClock
    app: web.Application
    demo: dict[str, Any]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/v1/ws"

    @property
    def operator_token(self) -> str:
        token: str = self.demo["operator_token"]
        return token

    def person(self, external_id: str) -> dict[str, Any]:
        return next(p for p in self.demo["people"] if p["external_id"] == external_id)

    async def write_acks(self) -> None:
        """Write the acknowledgements the node holds now (what its timer does every
        ``ack_flush_seconds``), so that a test reads them in the database."""
        await self.app[SERVICES].receipts.flush()


@asynccontextmanager
async def running_server(
    database_uri: str, tmp: Path, db_name: str | None = None, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """A Carnet on 127.0.0.1 with the demo school loaded in a fresh database."""
    port = unused_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        data_dir=tmp,
        mongodb_uri=database_uri,
        db_name=db_name or f"t_{uuid.uuid4().hex[:12]}",
        **overrides,
    )
    store = await Store.connect(database_uri, settings.db_name, store_options(settings))
    clock = FrozenClock(START)
    demo = await load_demo(store, tmp, clock.now(), settings.enrol_code_days)
    app = create_app(settings, store, clock)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings, store, clock, app, demo)
    finally:
        await runner.cleanup()
        if db_name is None:
            await store.client.drop_database(settings.db_name)
        await store.close()


@asynccontextmanager
async def two_nodes(
    database_uri: str, tmp: Path, **overrides: Any
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two Carnet nodes sharing one fresh database (dropped after)."""
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    async with (
        running_server(database_uri, tmp, db_name=db_name, **overrides) as a,
        running_server(database_uri, tmp, db_name=db_name, **overrides) as b,
    ):
        try:
            yield a, b
        finally:
            await a.store.client.drop_database(db_name)


@dataclass
class ServerProcess:
    """``carnet serve`` as a real child process."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)


STARTED: list[subprocess.Popen[bytes]] = []
"""Every ``carnet serve`` a test started; the conftest kills leftovers after each test."""


def stop_leftovers() -> None:
    """Kill any server process a test left running (a failed assertion mid-test)."""
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_server_process(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    port: int | None = None,
) -> ServerProcess:
    """Start ``carnet serve`` and wait until ``/readyz`` answers 200.

    Args:
        port: a fixed port (clients that keep their URL across a restart); a free
            one by default.
    """
    port = port or unused_port()
    log = data_dir / f"serve-{port}-{time.monotonic_ns()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    STARTED.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"carnet serve exited {process.returncode}: {log.read_text()}")
        if _ready(url):
            return ServerProcess(process, url, data_dir, log)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"carnet serve did not become ready: {log.read_text()}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
