"""End to end in headless Chromium (issue 10, "Tests"): a teacher (desktop), a parent
and a pupil (360 px) enrol with demo codes in three browser contexts of one real
Carnet. The teacher and the parent exchange messages (read receipt, an attachment
encrypted in one browser and decrypted in the other, a report the server verifies
from the franking evidence), the parent acknowledges an announcement with a signature
the server checks, the teacher opens a class channel with the director as second
adult, and the pupil is offered only the people the contact policy allows and is
refused a direct conversation with another pupil, with the reason shown. Every screen
passes axe-core's WCAG 2 A/AA rules at "serious" and "critical" impact. Screenshots
are kept under ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.support.servers import RunningServer
from tests.web.node import WEB, require_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.mark.timeout(300)  # two browsers, Argon2id twice: slow on a loaded machine
async def test_teacher_and_parent_talk_in_two_browsers(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    node = require_browser()
    async with http.get(server.url + "/app/") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    teacher, parent = server.person("T001"), server.person("R001")
    pupil, other_pupil = server.person("E001"), server.person("E002")
    other_parent = server.person("R002")
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
        "--pupil",
        pupil["code"],
        "--other-pupil",
        other_pupil["person_id"],
        "--other-pupil-name",
        other_pupil["name"],
        "--other-parent-name",
        other_parent["name"],
        "--class",
        f"{server.demo['school']['uai']}/{server.demo['school']['class']}",
        "--out",
        str(ARTIFACTS),
        cwd=WEB,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 280)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "browser-e2e.log").write_bytes(stderr)
    lines = stdout.decode().strip().splitlines()
    assert lines, stderr.decode()
    result = json.loads(lines[-1])
    assert result["ok"], (result, stderr.decode()[-3000:])
    assert len(result["digits"].split()) == 12
    assert (ARTIFACTS / "parent-conversation-360.png").stat().st_size > 0
    for name in (
        "teacher-conversation-1280",
        "teacher-announcement-1280",
        "parent-announcement-360",
        "teacher-class-1280",
        "pupil-refused-360",
        "parent-settings-360",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 0, name
