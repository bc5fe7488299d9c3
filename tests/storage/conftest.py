"""A fresh database of the session's real server for each storage test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from storage.database import Store


@pytest.fixture
async def store(database_uri: str) -> AsyncIterator[Store]:
    name = f"storage_{uuid.uuid4().hex[:12]}"
    store = await Store.connect(database_uri, name)
    try:
        yield store
    finally:
        await store.client.drop_database(name)
        await store.close()
