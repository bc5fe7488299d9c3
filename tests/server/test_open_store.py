"""``open_store`` starts the embedded database with what the settings ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.runtime import open_store


async def test_the_embedded_oplog_keeps_what_carnet_embedded_oplog_entries_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARNET_EMBEDDED_OPLOG_ENTRIES", "10000")
    settings = Settings(data_dir=tmp_path, mongodb_uri=None)
    async with open_store(settings) as store:
        for start in range(0, 12_000, 1000):
            await store.db.oplog_check.insert_many([{"i": i} for i in range(start, start + 1000)])
        kept = await store.client["local"]["oplog.rs"].count_documents({})
    # Trimmed at every thousandth write: at most 999 over the cap. Without the
    # setting (a million by default) all 12,000 and the index builds are kept.
    assert 10_000 <= kept < 11_000
