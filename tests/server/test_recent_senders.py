"""Who a receipt concerns: the runs of senders a node keeps per conversation (no I/O)."""

from __future__ import annotations

from server.recent_senders import RecentSenders


def test_consecutive_messages_of_one_sender_are_one_run() -> None:
    recent = RecentSenders(runs=4)
    for seq in range(1, 101):
        recent.saw("c", seq, "teacher")
    recent.saw("c", 101, "pupil")
    assert recent.latest("c") == 101
    assert recent.senders("c", 0, 100) == {"teacher"}
    assert recent.senders("c", 100, 101) == {"pupil"}
    assert recent.senders("c", 50, 101) == {"teacher", "pupil"}
    assert recent.senders("c", 101, 200) == set()
    assert recent.senders("other", 0, 10) == set() and recent.latest("other") == 0


def test_only_the_last_runs_are_kept() -> None:
    recent = RecentSenders(runs=3)
    for seq, sender in enumerate(["a", "b", "c", "d", "e"], start=1):
        recent.saw("c", seq, sender)
    assert recent.senders("c", 0, 5) == {"c", "d", "e"}


def test_late_messages_from_another_node_find_their_place() -> None:
    recent = RecentSenders()
    recent.saw("c", 1, "a")
    recent.saw("c", 3, "a")
    recent.saw("c", 2, "b")  # arrived after 3 through the change stream
    # Runs are ranges: a's run 1..3 covers 2 as well. Told too many, never too few.
    assert recent.senders("c", 1, 2) == {"a", "b"}
    assert recent.senders("c", 2, 3) == {"a"}
    assert recent.latest("c") == 3
    recent.saw("c", 2, "b")  # seen twice: nothing changes
    assert recent.senders("c", 1, 2) == {"a", "b"}


def test_least_recently_written_conversations_are_forgotten() -> None:
    recent = RecentSenders(conversations=2)
    recent.saw("x", 1, "a")
    recent.saw("y", 1, "a")
    recent.saw("x", 2, "a")  # x is fresher than y now
    recent.saw("z", 1, "a")
    assert recent.latest("y") == 0
    assert recent.latest("x") == 2 and recent.latest("z") == 1
