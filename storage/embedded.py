"""The embedded database: SecantusDB as a child process.

SecantusDB (GPL-2.0-only) speaks the MongoDB wire protocol over WiredTiger.
Carnet never imports it: it runs as ``python -m secantus`` in its own process
(docs/decisions/0001-licence.md), on 127.0.0.1 with an ephemeral port, and is
reached like any MongoDB through pymongo.

Life cycle rules:

- The child writes its log to ``<dir>/secantus.log``; its port is read from
  the line ``secantus listening on HOST:PORT``.
- The child asks the kernel for ``SIGKILL`` when its parent dies
  (``PR_SET_PDEATHSIG``), so a ``kill -9`` of Carnet cannot leave an orphan
  holding the data directory's lock. Not ``SIGTERM``: SecantusDB 0.7's
  handler sets an ``Event`` the main thread waits on and deadlocks when a
  second signal arrives inside it (seen in CI: the child alive, its main
  thread stuck in three nested handlers). A killed child loses nothing
  acknowledged: WiredTiger replays its journal at the next start (tested
  with ``kill -9`` of the database). Carnet's own shutdown still stops the
  child with one ``SIGTERM``.
- The URI of the running instance is written to ``<dir>/secantus.uri`` so
  that CLI commands run beside a live server reuse it instead of trying to
  open the same files.
- ``retryWrites=false`` in the URI: SecantusDB's retryable-write record makes
  writes ten times slower after ~10k writes.
- The child gets ``--config <dir>/secantusd.toml``, a file without settings:
  an explicit file turns off SecantusDB's search for ``./secantusd.toml``,
  ``~/.secantus/`` and ``/etc/secantus/``, so no stray file changes the child.
- The TTL sweeper cannot be turned off: SecantusDB 0.7.0b3's CLI ignores
  ``[storage] ttl_sweep_seconds`` and sweeps every 60 s by the real time.
  Documents whose ``expires_at`` is past by the real clock go within a
  minute, whatever clock Carnet was given (the tests' frozen clock starts in
  2037 for this reason: tests/conftest.py). The sweeper reads and decodes
  every document of each collection with a TTL index, under the storage
  lock, stalling every write (1.6 s at 100,000 documents): ``messages``, the
  one collection that grows with traffic, has no TTL index for this reason
  (``storage.messages``).
- The oplog keeps :data:`OPLOG_MAX_ENTRIES` entries (SecantusDB's default is
  100,000), or an hour, whichever is shorter. Once it is full, SecantusDB
  deletes the oldest thousand entries at every thousandth write, under the
  storage lock: a write waits 40–60 ms for it (docs/performance.md). At
  100,000 entries a busy node reached that point within a minute; at a million
  an hour's history holds 280 writes a second (mongod's default oplog, 5 % of
  the disk, holds millions). The change stream resumes from it after a
  database restart or a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

OPLOG_MAX_ENTRIES = 1_000_000
"""Oplog entries the embedded database keeps by default (≈ 0.6 KiB each on disk
for a 256-byte message)."""
_LISTENING = re.compile(rb"secantus listening on ([0-9.]+):(\d+)")
_PR_SET_PDEATHSIG = 1


def uri_for(host: str, port: int) -> str:
    """The pymongo URI of an embedded instance."""
    return f"mongodb://{host}:{port}/?retryWrites=false"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedDatabase:
    """Starts, watches and stops one SecantusDB child process.

    Args:
        directory: where its WiredTiger files, log and URI file live.
        cache_size: WiredTiger cache, e.g. ``"256M"``.
        oplog_entries: oplog entries kept at most (the other bound is an hour).
        start_timeout: seconds to wait for the listening line and a ping.
    """

    def __init__(
        self,
        directory: Path,
        cache_size: str = "256M",
        start_timeout: float = 60,
        *,
        oplog_entries: int = OPLOG_MAX_ENTRIES,
    ) -> None:
        self.directory = directory
        self.cache_size = cache_size
        self.oplog_entries = oplog_entries
        self.start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self.uri: str | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "secantus.log"

    @property
    def uri_path(self) -> Path:
        return self.directory / "secantus.uri"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> str:
        """Start the child and return its URI once it is listening.

        Raises:
            DatabaseUnavailable: the child exited or did not listen in time.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        storage = self.directory / "wiredtiger"
        config = self.directory / "secantusd.toml"
        config.write_text("# No settings: passed so that SecantusDB reads no other file.\n")
        with open(self.log_path, "wb") as log_file:
            # The child owns its stderr through this file: no pipe to drain.
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "secantus",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--storage-path",
                str(storage),
                "--cache-size",
                self.cache_size,
                "--config",
                str(config),
                "--oplog-max-entries",
                str(self.oplog_entries),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise DatabaseUnavailable(
                    f"embedded database exited with status {self._process.returncode};"
                    f" see {self.log_path}"
                )
            match = _LISTENING.search(self.log_path.read_bytes())
            if match:
                self.uri = uri_for(match.group(1).decode(), int(match.group(2)))
                self.uri_path.write_text(self.uri + "\n")
                log.info("embedded database pid %s at %s", self._process.pid, self.uri)
                return self.uri
            await asyncio.sleep(0.05)
        await self.stop()
        raise DatabaseUnavailable(f"embedded database did not start; see {self.log_path}")

    async def stop(self, timeout: float = 15) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        with contextlib.suppress(FileNotFoundError):
            self.uri_path.unlink()
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            log.warning("embedded database did not stop in %ss; killing it", timeout)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def recorded_uri(directory: Path) -> str | None:
    """The URI a live embedded instance of this directory recorded, if any."""
    try:
        return directory.joinpath("secantus.uri").read_text().strip() or None
    except FileNotFoundError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (used by tests and the CLI)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
