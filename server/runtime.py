"""Where the database comes from: ``CARNET_MONGODB_URI``, or the embedded one.

:func:`open_store` is used by ``carnet serve`` and by every CLI command. With
no URI it reuses the embedded instance a live Carnet already runs for the same
data directory (so ``carnet directory import`` works beside ``make serve``),
or starts its own and stops it on exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.config import Settings
from storage.database import Store, StoreOptions
from storage.embedded import EmbeddedDatabase, recorded_uri
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


def store_options(settings: Settings, timeout_ms: int = 10_000) -> StoreOptions:
    return StoreOptions(
        max_code_attempts=settings.enrol_attempts_per_code,
        server_selection_timeout_ms=timeout_ms,
    )


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """Connect to the configured database, starting the embedded one if needed.

    Raises:
        DatabaseUnavailable: the database cannot be reached or started.
    """
    embedded: EmbeddedDatabase | None = None
    store: Store | None = None
    uri = settings.mongodb_uri
    if uri is None:
        recorded = recorded_uri(settings.database_dir)
        if recorded is not None:
            try:
                store = await Store.connect(
                    recorded, settings.db_name, store_options(settings, 1500)
                )
                log.info("using the embedded database another Carnet runs at %s", recorded)
            except DatabaseUnavailable:
                store = None
        if store is None:
            embedded = EmbeddedDatabase(
                settings.database_dir,
                settings.embedded_cache_size,
                oplog_entries=settings.embedded_oplog_entries,
            )
            uri = await embedded.start()
    try:
        if store is None:
            assert uri is not None  # noqa: S101 - set by one of the branches above
            store = await Store.connect(uri, settings.db_name, store_options(settings))
        yield store
    finally:
        if store is not None:
            await store.close()
        if embedded is not None:
            await embedded.stop()
