"""The benchmark harness runs end to end on a tiny load (issue 9; no timing asserted).

``bench/`` is never part of the test suite; this only proves that
``python -m bench run`` still starts Carnet and the bare relay, enrols
devices, exchanges messages over real WebSockets and writes its JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_direct_runs_on_a_tiny_load(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "direct",
            "--runs",
            "1",
            "--duration",
            "1",
            "--pairs",
            "2",
            "--window",
            "2",
            "--workers",
            "1",
            "--no-database",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [result_file] = tmp_path.glob("direct-*.json")
    result = json.loads(result_file.read_text())
    run = result["runs"][0]
    for system in ("carnet", "relay"):
        assert run[system]["deliveries"] > 0, run[system]
        assert run[system]["errors"] == {}, run[system]
        assert run[system]["duplicates"] == 0
    assert result["medians"]["carnet"]["server_cpu_us_per_delivery"] > 0
