"""End to end in headless Chromium: a teacher (desktop) and a parent (360 px) enrol
with demo codes in two browser contexts, exchange messages through a real Carnet,
compare safety numbers, and every screen passes axe-core's WCAG 2 A/AA rules at
"serious" and "critical" impact (issue 10, "Tests"). Screenshots are kept under
``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.support.servers import RunningServer
from tests.web.node import WEB, require_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


async def test_teacher_and_parent_talk_in_two_browsers(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    node = require_browser()
    async with http.get(server.url + "/app/") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    teacher, parent = server.person("T001"), server.person("R001")
    process = await asyncio.create_subprocess_exec(
        node,
        "--import",
        "tsx",
        "scripts/browser-e2e.ts",
        "--url",
        server.url,
        "--teacher",
        teacher["code"],
        "--parent",
        parent["code"],
        "--teacher-name",
        teacher["name"],
        "--parent-name",
        parent["name"],
        "--out",
        str(ARTIFACTS),
        cwd=WEB,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 150)
    lines = stdout.decode().strip().splitlines()
    assert lines, stderr.decode()
    result = json.loads(lines[-1])
    assert result["ok"], (result, stderr.decode()[-3000:])
    assert len(result["digits"].split()) == 12
    assert (ARTIFACTS / "parent-conversation-360.png").stat().st_size > 0
    assert (ARTIFACTS / "teacher-conversation-1280.png").stat().st_size > 0
