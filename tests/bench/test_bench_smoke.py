"""The benchmark harness runs end to end on a tiny load (issue 9; no timing asserted).

``bench/`` is never part of the test suite; this only proves that
``python -m bench run`` still starts Carnet and the bare relay, enrols
devices, raises the bench school's rate limits through the policy API,
creates conversations the contact policy allows, exchanges messages in them
over real WebSockets (cumulative acks) and writes its JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", *args, "--runs", "1", "--duration", "1"]
        + ["--workers", "1", "--no-database", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [result_file] = tmp_path.glob(f"{args[0]}-*.json")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


@pytest.mark.timeout(180)
def test_direct_runs_on_a_tiny_load(tmp_path: Path) -> None:
    result = bench(tmp_path, "direct", "--pairs", "2", "--window", "2")
    run = result["runs"][0]
    for system in ("carnet", "relay"):
        assert run[system]["deliveries"] > 0, run[system]
        assert run[system]["errors"] == {}, run[system]
        assert run[system]["duplicates"] == 0
    assert result["medians"]["carnet"]["server_cpu_us_per_delivery"] > 0
    for phase in (run["carnet"], run["carnet"]["half_rate"]):  # the tail's episodes, if any
        assert all(tenth[2] > 0 for tenth in phase["slow_tenths"]), phase["slow_tenths"]
    # Messages were persisted: the database counted writes during the phase.
    assert run["carnet"]["db_writes"]["insert"] > 0
    assert run["carnet"]["db_writes_per_message"] > 0


@pytest.mark.timeout(180)
def test_class_channel_runs_on_a_tiny_load(tmp_path: Path) -> None:
    result = bench(tmp_path, "class", "--members", "4", "--window", "2", "--no-relay")
    carnet = result["runs"][0]["carnet"]
    assert carnet["errors"] == {}, carnet
    assert carnet["messages_sent"] > 0
    # Every member device (3 pupils and the director) received every message once.
    assert carnet["complete_devices"] == 4
    assert carnet["deliveries"] == 4 * carnet["messages_sent"]
    assert carnet["duplicates"] == 0
    assert carnet["db_writes_per_message"] > 0
