"""``carnet serve`` as a real process: demo data, SIGTERM drain (1001), restart keeps
data, kill -9 leaves no orphan database, CLI beside a live server, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from storage.embedded import pid_alive
from tests.support.devices import WireDevice
from tests.support.servers import start_server_process


def database_pids(data_dir: Path) -> list[int]:
    """Pids of SecantusDB processes serving ``data_dir``."""
    needle = str(data_dir / "db" / "wiredtiger").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"secantus" in cmdline and needle in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_gone(pids: list[int], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def carnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_serve_drains_on_sigterm_and_restart_keeps_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server_process(data, "--demo")
    demo = json.loads((data / "demo.json").read_text())
    assert oct((data / "demo.json").stat().st_mode & 0o777) == "0o600"
    assert len(demo["people"]) == 9 and demo["operator_token"].startswith("carnet_operator_")
    db_pids = database_pids(data)
    assert len(db_pids) == 1

    device = WireDevice()
    async with aiohttp.ClientSession() as http:
        await device.enrol(http, first.url, demo["people"][0]["code"])
        ws = await device.connect(http, first.url.replace("http", "ws") + "/v1/ws")
        first.process.send_signal(signal.SIGTERM)
        msg = await ws.receive(timeout=20)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert first.process.wait(30) == 0
    assert wait_gone(db_pids), "the database child outlived carnet"

    second = start_server_process(data, "--demo")
    try:
        assert json.loads((data / "demo.json").read_text()) == demo
        async with aiohttp.ClientSession() as http:
            ws = await device.connect(http, second.url.replace("http", "ws") + "/v1/ws")
            await ws.close()
    finally:
        assert second.stop() == 0


async def test_kill_9_leaves_no_orphan_holding_the_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server_process(data)
    db_pids = database_pids(data)
    server.stop(signal.SIGKILL)
    assert wait_gone(db_pids), "orphan database after kill -9 of carnet"
    again = start_server_process(data)  # the data directory's lock was released
    assert again.stop() == 0


async def test_cli_works_beside_a_live_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server_process(data, "--demo")
    try:
        good = tmp_path / "people.csv"
        good.write_text(
            "uai,school_name,external_id,role,given_name,family_name\n"
            "0750001A,Lycée Test,P1,teacher,Anne,Roy\n"
        )
        result = carnet("directory", "import", str(good), "--data-dir", str(data))
        assert result.returncode == 0, result.stderr
        assert "1 people created" in result.stdout

        bad = tmp_path / "bad.csv"
        bad.write_text("uai,external_id,role,given_name,family_name\n0750001A,P2,pupil,A,\n")
        result = carnet("directory", "import", str(bad), "--data-dir", str(data))
        assert result.returncode == 1
        assert f"{bad}:2: family_name" in result.stderr

        result = carnet(
            "admin",
            "enrolment-code",
            "--school",
            "0750001A",
            "--external-id",
            "P1",
            "--data-dir",
            str(data),
        )
        assert result.returncode == 0 and "Anne Roy" in result.stdout

        result = carnet(
            "admin",
            "create-token",
            "--role",
            "dpo",
            "--school",
            "0750001A",
            "--data-dir",
            str(data),
        )
        assert result.returncode == 0 and result.stdout.startswith("carnet_dpo_")
        token = result.stdout.strip()
        async with aiohttp.ClientSession() as http:
            async with http.get(
                server.url + "/v1/admin/schools/0750001A/people",
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                assert r.status == 403  # a DPO token is not an operator token
    finally:
        assert server.stop() == 0


def test_bad_configuration_is_named(tmp_path: Path) -> None:
    result = carnet("serve", "--data-dir", str(tmp_path), env={"CARNET_PORT": "eighty"})
    assert result.returncode == 2
    assert "port (CARNET_PORT): Input should be a valid integer" in result.stderr
    config = tmp_path / "carnet.toml"
    config.write_text('max_frame_bytes = 12\nlog_level = "LOUD"\n')
    result = carnet("serve", "--config", str(config))
    assert result.returncode == 2
    assert "max_frame_bytes" in result.stderr and "log_level" in result.stderr
    result = carnet("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server_process(data, env={"CARNET_LOG_FORMAT": "json"})
    assert server.stop() == 0
    records = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    assert records, "no JSON log line"
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any("embedded database" in r["msg"] for r in records)
