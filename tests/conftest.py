"""Fixtures shared by every layer's tests.

``database_uri``: one real SecantusDB child for the whole session (each test
uses a database of its own). ``server``: a real Carnet on an ephemeral port,
with the demo school loaded and a frozen clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from storage.embedded import EmbeddedDatabase
from tests.support.servers import RunningServer, running_server, stop_leftovers


@pytest.fixture(scope="session")
async def database_uri(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    # No TTL sweeper: the tests' frozen clocks are not the real time, and the
    # sweeper would delete by the real time (expiry is tested by deleting).
    database = EmbeddedDatabase(
        tmp_path_factory.mktemp("secantus"), cache_size="256M", ttl_sweep=False
    )
    uri = await database.start()
    try:
        yield uri
    finally:
        await database.stop()


@pytest.fixture
async def server(database_uri: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(database_uri, tmp_path) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
def _no_leftover_servers() -> Iterator[None]:
    """A test that fails half-way must not leave ``carnet serve`` processes behind
    (their database children follow them: PR_SET_PDEATHSIG)."""
    yield
    stop_leftovers()
