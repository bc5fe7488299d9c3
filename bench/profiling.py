"""py-spy around a measured phase, and the top costs of its collapsed stacks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_IDLE = ("epoll_wait", "wait4", "select (", "poll (", "futex", "nanosleep")


def start_py_spy(pid: int, output: Path, seconds: float, native: bool) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` for ``seconds`` into ``output`` (collapsed stacks).

    Raises:
        FileNotFoundError: py-spy is not installed next to this Python.
    """
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    if native:
        argv.append("--native")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_costs(collapsed: Path, limit: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares (percent of busy samples) of each frame."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if any(idle in stack.rsplit(";", 1)[-1] for idle in _IDLE):
            continue  # waiting, not working
        frames = [f.split(" (")[0] + " " + _where(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"self": [], "inclusive": []}

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(limit)]

    return {"self": share(own), "inclusive": share(inclusive)}


def _where(frame: str) -> str:
    if "(" not in frame:
        return ""
    location = frame.split("(", 1)[1].rstrip(")")
    path, _, line = location.rpartition(":")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"({short})"
