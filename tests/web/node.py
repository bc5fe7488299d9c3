"""Running the web client's Node and browser scripts from pytest.

The web client (``client/web``) is a TypeScript project: its dependencies come from
``npm ci`` and its browser bundle from ``npm run build``. When they are missing the
tests of this folder are skipped with the command to run (``make test`` runs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

WEB = Path(__file__).resolve().parents[2] / "client" / "web"
STRICT = os.environ.get("CARNET_STRICT_TESTS") == "1"
"""``make test`` sets it: a missing prerequisite is then a failure, never a skip."""
NODE = shutil.which("node")
CHROMIUM = Path("/usr/bin/chromium")


def _missing(reason: str) -> NoReturn:
    if STRICT:
        pytest.fail(f"{reason} (CARNET_STRICT_TESTS=1: make test installs it)")
    pytest.skip(reason)


def require_node() -> str:
    """The node executable, or skip: the web client is not installed here."""
    if NODE is None or not (WEB / "node_modules" / ".bin" / "tsx").exists():
        _missing("web client not installed: run `npm ci` in client/web")
    return NODE


def require_browser() -> str:
    """The node executable for the browser scripts, or skip with what is missing."""
    node = require_node()
    if not CHROMIUM.exists():
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    if not (WEB / "dist" / "index.html").exists():
        _missing("web client not built: run `npm run build` in client/web")
    return node


class NodeProcess:
    """A Node script speaking JSON lines on stdin/stdout; every read has a deadline."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, script: str, *args: str) -> NodeProcess:
        node = require_node()
        process = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",
            "--no-warnings",
            "--import",
            "tsx",
            script,
            *args,
            cwd=WEB,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def event(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        """The next event of ``kind`` (earlier events of other kinds are kept)."""
        for index, kept in enumerate(self.events):
            if kept["event"] == kind:
                return self.events.pop(index)
        assert self.process.stdout is not None
        for _ in range(1000):
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not line:
                raise AssertionError(f"node exited: {await self.stderr()}")
            event: dict[str, Any] = json.loads(line)
            assert event["event"] != "error", (event, self.events)
            if event["event"] == kind:
                return event
            self.events.append(event)
        raise AssertionError(f"no {kind} event")

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        data = await asyncio.wait_for(self.process.stderr.read(), 5)
        return data.decode(errors="replace")

    async def close(self) -> int:
        if self.process.returncode is None:
            try:
                await self.command(cmd="quit")
                return await asyncio.wait_for(self.process.wait(), 10)
            except (TimeoutError, ConnectionError):
                self.process.kill()
        return await self.process.wait()
