"""CPU time and resident memory of one process, read from ``/proc`` (Linux, proc(5)).

The server's own CPU is measured apart from its database child: ``utime`` and
``stime`` of ``/proc/<pid>/stat`` count the process's threads only, never its
children's (those are ``cutime``/``cstime``, counted only once reaped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    cpu_seconds: float
    rss_bytes: int


def sample(pid: int) -> Sample:
    """CPU seconds (user + system, this process only) and RSS of ``pid``.

    Raises:
        FileNotFoundError: the process is gone.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss_pages = int(fields[21])
    return Sample((utime + stime) / _TICKS, rss_pages * _PAGE)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` file)."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.iterdir():
        try:
            text = (task / "children").read_text()
        except FileNotFoundError:
            continue
        found.extend(int(p) for p in text.split())
    return sorted(set(found))


def find_child(pid: int, needle: str) -> int | None:
    """The first child of ``pid`` whose command line contains ``needle``."""
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        if needle.encode() in cmdline:
            return child
    return None


class CpuMeter:
    """CPU and RSS of a few processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._start: dict[str, Sample] = {}
        self.cpu: dict[str, float] = {}
        self.rss: dict[str, int] = {}

    def start(self) -> None:
        self._start = {name: sample(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        for name, pid in self.pids.items():
            now = sample(pid)
            self.cpu[name] = now.cpu_seconds - self._start[name].cpu_seconds
            self.rss[name] = now.rss_bytes
