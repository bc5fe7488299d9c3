"""The servers under test, each in a process of its own on 127.0.0.1.

- Carnet: ``python -m server.cli serve --demo`` on a fresh data directory with
  its embedded SecantusDB child (started the same way production starts it);
  the demo's operator token (``<data dir>/demo.json``) drives the admin API.
- The bare relay: ``python -m bench.baseline_relay``.

Both are stopped with SIGTERM (then SIGKILL after a bound).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import find_child
from bench.wire import BenchError

HOST = "127.0.0.1"
READY_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    operator_token: str = ""
    database_pid: int | None = None
    database_uri: str | None = None
    """The embedded database's URI (``secantus.uri`` in the data directory)."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/ws"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def _start(
    name: str, argv: list[str], log: Path, port: int, env: dict[str, str], cwd: Path | None = None
) -> ServerProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=cwd
        )
    server = ServerProcess(name, process, port, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return server
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    server.stop()
    raise BenchError(f"{name} did not become ready in {READY_TIMEOUT}s; see {log}")


def start_carnet(data_dir: Path, source: Path | None = None) -> ServerProcess:
    """``carnet serve --demo`` on a fresh data directory; finds its database child.

    Args:
        data_dir: a fresh directory for the server and its embedded database.
        source: run the server from this source tree (a checkout of another
            commit) instead of the installed one.

    Raises:
        BenchError: it did not start.
    """
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "serve", "--demo", "--port", str(port)]
    argv += ["--data-dir", str(data_dir.resolve())]
    env = {"PYTHONPATH": str(source.resolve())} if source else {}
    server = _start("carnet", argv, data_dir / "serve.log", port, env, cwd=source)
    server.operator_token = json.loads((data_dir / "demo.json").read_text())["operator_token"]
    server.database_pid = find_child(server.pid, "secantus")
    for found in sorted(data_dir.rglob("secantus.uri")):
        server.database_uri = found.read_text().strip() or None
    return server


def start_relay(log_dir: Path) -> ServerProcess:
    """The bare aiohttp relay (:mod:`bench.baseline_relay`).

    Raises:
        BenchError: it did not start.
    """
    port = free_port()
    argv = [sys.executable, "-m", "bench.baseline_relay", "--port", str(port)]
    return _start("relay", argv, log_dir / "relay.log", port, {})
