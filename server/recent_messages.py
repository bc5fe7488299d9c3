"""The last stored messages of each conversation, kept by the node that saw them.

Every node sees every stored message (its own writes and the change feed).
When many devices come back at once — 999 members of a group after a Wi-Fi
outage — each would read the same few messages from the database for its
catch-up. This ring keeps the last :data:`PER_CONVERSATION` message
documents of each conversation, bounded in bytes for the node
(:data:`MAX_BYTES`, least recently written conversations dropped), and
answers a catch-up range only when it holds every seq of that range and none
has passed its ``expires_at``; otherwise the caller reads the database.

Sans I/O. It holds ciphertext in memory only, never longer than the message's
undelivered lifetime (RGPD art. 5(1)(e)); nothing is written anywhere.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

Doc = dict[str, Any]
PER_CONVERSATION = 256
MAX_BYTES = 64 * 1024 * 1024
OVERHEAD = 256
"""Bytes counted per document beside its ciphertexts (ids, dates, recipients)."""


def _size(doc: Doc) -> int:
    size = OVERHEAD + 40 * len(doc.get("recipients", ()))
    size += sum(len(c) for c in (doc.get("pairwise") or {}).values())
    group = doc.get("group")
    return size + (len(group) if group is not None else 0)


class RecentMessages:
    def __init__(
        self, per_conversation: int = PER_CONVERSATION, max_bytes: int = MAX_BYTES
    ) -> None:
        self._per_conversation = per_conversation
        self._max_bytes = max_bytes
        self._bytes = 0
        self._docs: OrderedDict[str, dict[int, Doc]] = OrderedDict()

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, doc: Doc) -> None:
        """A message or event document was stored (any node, any order)."""
        conversation, seq = doc["conversation"], int(doc["seq"])
        docs = self._docs.get(conversation)
        if docs is None:
            docs = self._docs[conversation] = {}
        else:
            self._docs.move_to_end(conversation)
        if seq in docs:
            return
        docs[seq] = doc
        self._bytes += _size(doc)
        while len(docs) > self._per_conversation:  # the first stored (not min(): O(n))
            self._bytes -= _size(docs.pop(next(iter(docs))))
        while self._bytes > self._max_bytes and self._docs:
            _, dropped = self._docs.popitem(last=False)
            self._bytes -= sum(_size(d) for d in dropped.values())

    def covering(self, conversation: str, after: int, upto: int, now: datetime) -> list[Doc] | None:
        """Every document with ``after < seq <= upto``, or None unless all are held here.

        None also when one of them has outlived its ``expires_at``: the
        database has the final word on what expired.
        """
        docs = self._docs.get(conversation)
        if docs is None or upto - after > len(docs):
            return None
        found = []
        for seq in range(after + 1, upto + 1):
            doc = docs.get(seq)
            if doc is None or doc["expires_at"] <= now:
                return None
            found.append(doc)
        return found
