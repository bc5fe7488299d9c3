"""Receipts other nodes moved, read from change events without a lookup (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from server.fanout import MovedReceipt, receipt_moved

AT = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)


def test_an_inserted_receipt_is_read_from_its_document() -> None:
    change = {
        "operationType": "insert",
        "documentKey": {"_id": "c1:p1:read"},
        "fullDocument": {"conversation": "c1", "person_id": "p1", "kind": "read", "seq": 4,
                         "at": AT, "node": "n_other"},
    }  # fmt: skip
    assert receipt_moved(change) == MovedReceipt("c1", "p1", "read", 4, AT)


def test_an_update_is_read_from_its_changed_fields_and_id() -> None:
    change = {
        "operationType": "update",
        "documentKey": {"_id": "c1:p1:delivered"},
        "updateDescription": {"updatedFields": {"seq": 9, "at": AT}, "removedFields": []},
    }
    assert receipt_moved(change) == MovedReceipt("c1", "p1", "delivered", 9, AT)


def test_an_update_that_did_not_move_the_seq_tells_nothing() -> None:
    for fields in ({"at": AT}, {"node": "n_other"}, {}):
        change = {
            "operationType": "update",
            "documentKey": {"_id": "c1:p1:delivered"},
            "updateDescription": {"updatedFields": fields},
        }
        assert receipt_moved(change) is None
    odd = {
        "operationType": "update",
        "documentKey": {"_id": "not-a-receipt-id"},
        "updateDescription": {"updatedFields": {"seq": 3, "at": AT}},
    }
    assert receipt_moved(odd) is None
