"""Fixtures shared by every layer's tests.

``database_uri``: one real SecantusDB child for the whole session (each test
uses a database of its own); ``store``: a fresh database of it, dropped
after. ``server``: a real Carnet on an ephemeral port, with the demo school
loaded and a frozen clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from storage.database import Store
from storage.embedded import EmbeddedDatabase
from tests.support.servers import RunningServer, running_server, stop_leftovers


@pytest.fixture(scope="session")
async def database_uri(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    # SecantusDB 0.7.0b3 sweeps its TTL indexes every 60 s by the real time (it
    # cannot be turned off: storage/embedded.py). Harmless here: the frozen
    # clocks start on 1 September 2037 (tests/support/servers.py START), so every
    # expires_at a test stores is years after the real date. Expiry is tested by
    # deleting what a TTL index would delete, or by Carnet's jobs at the frozen
    # time; never by waiting for the sweeper.
    database = EmbeddedDatabase(tmp_path_factory.mktemp("secantus"), cache_size="256M")
    uri = await database.start()
    try:
        yield uri
    finally:
        await database.stop()


@pytest.fixture
async def store(database_uri: str) -> AsyncIterator[Store]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    store = await Store.connect(database_uri, name)
    try:
        yield store
    finally:
        await store.client.drop_database(name)
        await store.close()


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
