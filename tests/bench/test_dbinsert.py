"""The raw insert baseline (``bench.dbinsert``) writes Carnet's own message documents.

No timing asserted: only that each mode writes, and that what it writes is what
Carnet stores (Carnet's repository reads it back for the recipient device).
"""

from __future__ import annotations

import uuid

from bench import dbinsert
from storage.database import Store


async def test_the_baseline_writes_in_each_mode() -> None:
    results = await dbinsert.measure(64, 0.2)
    assert set(results) == {"single", "concurrent", "batch"}
    assert all(mode["docs"] > 0 and mode["database_cpu_us_per_doc"] for mode in results.values())


async def test_its_documents_are_carnets_messages(database_uri: str) -> None:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    store = await Store.connect(database_uri, name)
    try:
        await store.messages.create_indexes()
        docs = [dbinsert.message_doc(n, 64) for n in range(3 * dbinsert.CONVERSATIONS)]
        await store.messages.insert_ordered(docs)
        first = docs[0]
        [recipient] = first["pairwise"]
        found = await store.messages.for_device(recipient, first["conversation"], 0, 10)
        assert [m.seq for m in found] == [1, 3]  # n = 0 and n = 100: same pair, same device
        assert found[0].ciphertext == first["pairwise"][recipient]
    finally:
        await store.client.drop_database(name)
        await store.close()
