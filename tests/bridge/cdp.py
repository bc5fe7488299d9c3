"""A minimal Chrome DevTools Protocol driver for Debian's headless ``chromium``.

No browser download and no extra package: the system browser is started with
a private profile on 127.0.0.1, and driven over its DevTools WebSocket with
the ``websockets`` library (already the SDK's transport).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

CHROMIUM = "/usr/bin/chromium"


class Page:
    """One page target; :meth:`call` sends a command and returns its result."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self._ws = ws
        self._next = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        for _ in range(10_000):
            message = json.loads(await asyncio.wait_for(self._ws.recv(), 30))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)
        raise RuntimeError(f"no answer to {method}")

    async def wait_event(self, method: str) -> dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        for _ in range(10_000):
            message = json.loads(await asyncio.wait_for(self._ws.recv(), 30))
            if message.get("method") == method:
                found: dict[str, Any] = message
                return found
        raise RuntimeError(f"no {method} event")

    async def navigate(self, url: str) -> None:
        self.events.clear()
        await self.call("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def click_and_wait(self, selector: str) -> None:
        """Focus an element and press Enter on it (keyboard use), then wait for the next page."""
        self.events.clear()
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        for kind in ("keyDown", "keyUp"):
            await self.call(
                "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                windowsVirtualKeyCode=13, text="\r" if kind == "keyDown" else "",
            )  # fmt: skip
        await self.wait_event("Page.loadEventFired")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium(profile: Path, width: int = 360, height: int = 740) -> AsyncIterator[Page]:
    """A headless chromium with one page emulating a phone screen of ``width`` CSS pixels."""
    if shutil.which(CHROMIUM) is None:
        raise AssertionError("Debian's chromium is needed: apt-get install -y chromium")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):  # readiness of the child process, not a timed assertion
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        async with websockets.connect(
            f"ws://127.0.0.1:{port}{port_file.read_text().splitlines()[1]}", max_size=None
        ) as browser_ws:
            browser = Page(browser_ws)
            target = await browser.call("Target.createTarget", url="about:blank")
            page_ws_url = f"ws://127.0.0.1:{port}/devtools/page/{target['targetId']}"
        async with websockets.connect(page_ws_url, max_size=None) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height,
                deviceScaleFactor=2, mobile=True,
            )  # fmt: skip
            yield page
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
