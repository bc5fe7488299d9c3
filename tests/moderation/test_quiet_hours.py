"""Quiet hours and night closure in the school's zone, across both DST changes (Europe/Paris)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from moderation import (
    ContactPolicy,
    Delivery,
    DirectoryView,
    ModerationUsageError,
    NightClosure,
    QuietHours,
    in_window,
    night_closed,
    quiet_delivery,
    window_end,
)
from storage.models import School
from tests.moderation.cast import MUM5A, P5A, SCHOOLS, STAFF, T5A, TB, A, view

PARIS = ZoneInfo("Europe/Paris")
NIGHTS = QuietHours(weekends=False)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        # Spring forward, Sunday 30 March 2025: 02:00 CET becomes 03:00 CEST.
        (utc(2025, 3, 29, 18, 59), False),  # Sat 19:59 CET
        (utc(2025, 3, 29, 19, 0), True),  # Sat 20:00 CET
        (utc(2025, 3, 30, 1, 0), True),  # Sun 03:00 CEST, just after the jump
        (utc(2025, 3, 30, 4, 59), True),  # Sun 06:59 CEST
        (utc(2025, 3, 30, 5, 0), False),  # Sun 07:00 CEST (06:00 with a fixed +01:00)
        (utc(2025, 3, 30, 17, 59), False),  # Sun 19:59 CEST
        (utc(2025, 3, 30, 18, 0), True),  # Sun 20:00 CEST
        # Fall back, Sunday 26 October 2025: 03:00 CEST becomes 02:00 CET.
        (utc(2025, 10, 25, 17, 59), False),  # Sat 19:59 CEST
        (utc(2025, 10, 25, 18, 0), True),  # Sat 20:00 CEST
        (utc(2025, 10, 26, 0, 30), True),  # Sun 02:30 CEST (first pass)
        (utc(2025, 10, 26, 1, 30), True),  # Sun 02:30 CET (second pass)
        (utc(2025, 10, 26, 5, 59), True),  # Sun 06:59 CET (07:59 with a fixed +02:00)
        (utc(2025, 10, 26, 6, 0), False),  # Sun 07:00 CET
        (utc(2025, 10, 26, 18, 59), False),  # Sun 19:59 CET
        (utc(2025, 10, 26, 19, 0), True),  # Sun 20:00 CET
    ],
)
def test_nightly_window_follows_the_wall_clock(instant: datetime, quiet: bool) -> None:
    assert in_window(NIGHTS, PARIS, instant) is quiet


def test_dst_nights_are_ten_and_twelve_hours_long() -> None:
    march_start, october_start = utc(2025, 3, 29, 19, 0), utc(2025, 10, 25, 18, 0)
    march_end = window_end(NIGHTS, PARIS, march_start)
    october_end = window_end(NIGHTS, PARIS, october_start)
    assert march_end == utc(2025, 3, 30, 5, 0)
    assert october_end == utc(2025, 10, 26, 6, 0)
    assert march_end - march_start == timedelta(hours=10)
    assert october_end - october_start == timedelta(hours=12)
    assert march_end.astimezone(PARIS).time() == time(7, 0)


def test_weekends_run_from_friday_night_to_monday_morning() -> None:
    friday_night = utc(2025, 3, 28, 20, 0)  # 21:00 CET
    assert window_end(QuietHours(), PARIS, friday_night) == utc(2025, 3, 31, 5, 0)
    assert in_window(QuietHours(), PARIS, utc(2025, 3, 29, 11, 0))  # Saturday noon
    assert not in_window(QuietHours(), PARIS, utc(2025, 3, 31, 5, 0))  # Monday 07:00 CEST


def test_other_windows() -> None:
    weekends_only = QuietHours(start=time(0, 0), end=time(0, 0))
    saturday = utc(2025, 10, 25, 10, 0)
    assert window_end(weekends_only, PARIS, saturday) == datetime(2025, 10, 27, tzinfo=PARIS)
    assert not in_window(weekends_only, PARIS, utc(2025, 10, 27, 23, 0))
    lunch = QuietHours(start=time(12, 0), end=time(14, 0), weekends=False)
    assert in_window(lunch, PARIS, utc(2025, 3, 12, 11, 0))  # 12:00 CET
    assert not in_window(lunch, PARIS, utc(2025, 3, 12, 13, 0))  # 14:00 CET
    assert window_end(lunch, PARIS, utc(2025, 3, 12, 13, 0)) is None


def test_delivery_to_staff_and_parents_is_silent_at_night_never_to_pupils() -> None:
    night = utc(2025, 3, 12, 21, 0)  # Wednesday 22:00 in Paris
    for recipient in (T5A, STAFF, MUM5A):
        assert quiet_delivery(view(), recipient, night) == Delivery.SILENT
        assert quiet_delivery(view(), recipient, utc(2025, 3, 12, 10, 0)) == Delivery.NOTIFY
    assert quiet_delivery(view(), P5A, night) == Delivery.NOTIFY


def test_the_recipients_school_zone_decides() -> None:
    schools = {**SCHOOLS, TB.uai: School(uai=TB.uai, name="B", timezone="America/Cayenne")}
    world = DirectoryView(schools)
    evening_in_paris = utc(2025, 3, 12, 20, 30)  # 21:30 Paris, 17:30 Cayenne
    assert quiet_delivery(world, T5A, evening_in_paris) == Delivery.SILENT
    assert quiet_delivery(world, TB, evening_in_paris) == Delivery.NOTIFY


def test_night_closure_is_opt_in_and_for_pupils_only() -> None:
    night = utc(2025, 3, 12, 21, 0)
    assert not night_closed(view(), P5A, night)
    closing = view(ContactPolicy(night_closure=NightClosure(enabled=True)))
    assert night_closed(closing, P5A, night)
    assert not night_closed(closing, P5A, utc(2025, 3, 12, 10, 0))
    assert not night_closed(closing, T5A, night)


def test_unknown_school_and_naive_time_are_our_bugs() -> None:
    with pytest.raises(ModerationUsageError):
        quiet_delivery(DirectoryView({}), T5A, utc(2025, 3, 12, 21, 0))
    with pytest.raises(ModerationUsageError):
        in_window(NIGHTS, PARIS, datetime(2025, 3, 12, 21, 0))
    bad_zone = DirectoryView({A: School(uai=A, name="A", timezone="Mars/Olympus")})
    with pytest.raises(ModerationUsageError):
        quiet_delivery(bad_zone, T5A, utc(2025, 3, 12, 21, 0))
