"""Who sent the latest messages of each conversation, as this node saw them.

A receipt ("Inès received the class channel up to seq 42") matters to the
people whose messages it covers, not to every member: telling all members
would cost members² frames per group message (docs/performance.md). Each
node sees every stored message (its own writes and the change stream), so
it keeps, per conversation, the last few *runs* of senders — consecutive
seqs sent by one person collapse into one run — and the highest seq seen.

Runs are seq ranges: a message another node stored inside a run of this
node's sender (seen late, through the change stream) makes both senders
concerned — told too many, never too few. Sans I/O and bounded: at most
:data:`RUNS` runs per conversation and :data:`CONVERSATIONS` conversations
(least recently written dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

RUNS = 16
CONVERSATIONS = 50_000


@dataclass
class _Run:
    first: int
    last: int
    sender: str


class RecentSenders:
    def __init__(self, runs: int = RUNS, conversations: int = CONVERSATIONS) -> None:
        self._runs_per_conversation = runs
        self._capacity = conversations
        self._runs: OrderedDict[str, list[_Run]] = OrderedDict()
        self._latest: dict[str, int] = {}

    def saw(self, conversation: str, seq: int, sender: str | None) -> None:
        """A message ``seq`` of ``conversation`` from ``sender`` was stored (an event:
        no sender; it only moves :meth:`latest`)."""
        self._latest[conversation] = max(seq, self._latest.get(conversation, 0))
        runs = self._runs.get(conversation)
        if runs is None:
            runs = self._runs[conversation] = []
            if len(self._runs) > self._capacity:
                dropped, _ = self._runs.popitem(last=False)
                self._latest.pop(dropped, None)
        else:
            self._runs.move_to_end(conversation)
        if sender is None:
            return
        if runs and runs[-1].sender == sender and seq > runs[-1].last:
            runs[-1].last = seq
            return
        if runs and seq <= runs[-1].last:  # late (another node's, out of order): place it
            for run in runs:
                if run.sender == sender and run.first <= seq <= run.last:
                    return
            runs.append(_Run(seq, seq, sender))
            runs.sort(key=lambda r: r.first)
        else:
            runs.append(_Run(seq, seq, sender))
        del runs[: -self._runs_per_conversation]

    def latest(self, conversation: str) -> int:
        """The highest seq seen in ``conversation``, messages and events (0 if none)."""
        return self._latest.get(conversation, 0)

    def senders(self, conversation: str, after: int, upto: int) -> set[str]:
        """People who sent a message with ``after < seq <= upto`` among the runs kept."""
        runs = self._runs.get(conversation, ())
        return {r.sender for r in runs if r.last > after and r.first <= upto}
