"""``carnet dpo ...`` as a real process against the test's database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.dpo_requests import deadline
from tests.rgpd.seed import Seeded
from tests.support.servers import RunningServer


async def carnet_dpo(carnet: RunningServer, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "CARNET_MONGODB_URI": carnet.settings.mongodb_uri or "",
        "CARNET_DB_NAME": carnet.settings.db_name,
        "CARNET_DATA_DIR": str(tmp_path / "cli"),
        "CARNET_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "dpo", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_cli_register_verify_export_erase(
    carnet: RunningServer, seeded: Seeded, tmp_path: Path
) -> None:
    status, out = await carnet_dpo(carnet, tmp_path, "audit-verify")
    assert status == 0 and json.loads(out)["ok"] is True, out
    status, out = await carnet_dpo(carnet, tmp_path, "register", "--school", "9999999D")
    assert status == 0 and "Collège de démonstration" in json.loads(out)["controller"]
    pid = seeded.person["person_id"]
    archive = tmp_path / "export.zip"
    status, out = await carnet_dpo(carnet, tmp_path, "export", pid, "--output", str(archive))
    assert status == 0, out
    assert "people.json" in zipfile.ZipFile(archive).namelist()
    # The CLI runs on the real clock, years before START: the request seeded at
    # START is not overdue yet; received 40 days ago (real clock), it is.
    status, out = await carnet_dpo(carnet, tmp_path, "requests", "--overdue")
    assert status == 0 and json.loads(out)["requests"] == [], out
    received = datetime.now(UTC) - timedelta(days=40)
    await carnet.store.db["dpo_requests"].update_many(
        {"person_id": pid}, {"$set": {"received_at": received, "deadline": deadline(received)}}
    )
    status, out = await carnet_dpo(carnet, tmp_path, "requests", "--overdue")
    assert status == 0 and [r["person_id"] for r in json.loads(out)["requests"]] == [pid]
    status, out = await carnet_dpo(carnet, tmp_path, "erase", pid)
    assert status == 0 and json.loads(out)["devices"] == 2, out
    assert await carnet.store.directory.person(pid) is None
    actors = {e["actor"] for e in await carnet.store.audit.entries(action="person.erase")}
    assert actors == {"cli:dpo"}
    # Tampering makes the command fail.
    await carnet.store.db["audit_log"].update_one({"_id": 1}, {"$set": {"action": "x"}})
    status, out = await carnet_dpo(carnet, tmp_path, "audit-verify")
    assert status == 1 and json.loads(out)["first_bad_seq"] == 1
