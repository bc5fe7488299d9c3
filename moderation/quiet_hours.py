"""Quiet hours and night closure in the school's time zone (issue 5).

Quiet hours implement the right to disconnect (Code du travail, art.
L2242-17, and the ministry's charter for school staff): during the window, a
message to a recipient whose role is in ``quiet_hours.roles`` is stored and
delivered *silently* (no notification), and the sender is told. Night closure
refuses pupils' sending during its window.

Both windows are wall-clock times in the school's zone (``zoneinfo``), not
fixed UTC offsets: 20:00 is 20:00 local on either side of a daylight-saving
change, so a night is ten hours long on the last Sunday of March and twelve on
the last Sunday of October (Europe/Paris). A window with ``start > end``
crosses midnight; ``start == end`` is empty; ``weekends`` makes all of
Saturday and Sunday part of the window.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from moderation.directory import DirectoryView, require_aware
from moderation.policy import NightClosure, QuietHours
from moderation.reasons import Delivery
from storage.models import Person, Role

__all__ = ["in_window", "night_closed", "quiet_delivery", "window_end"]

_WEEKEND = (5, 6)
_MAX_DAYS = 9
"""Any window ends within a week and a day (a weekend plus a night)."""


def in_window(window: QuietHours | NightClosure, zone: ZoneInfo, now: datetime) -> bool:
    """Whether ``now`` falls in a quiet-hours or night-closure window.

    Args:
        window: The window settings.
        zone: The school's time zone.
        now: The instant (aware).

    Returns:
        Whether the local time is inside the window.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    local = now.astimezone(zone)
    if window.weekends and local.weekday() in _WEEKEND:
        return True
    t, start, end = local.time(), window.start, window.end
    if start < end:
        return start <= t < end
    if start > end:
        return t >= start or t < end
    return False


def window_end(window: QuietHours | NightClosure, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the window containing ``now`` ends (to tell the sender "until 07:00").

    Args:
        window: The window settings.
        zone: The school's time zone.
        now: The instant (aware).

    Returns:
        The first instant after ``now`` outside the window, in the school's zone,
        or ``None`` when ``now`` is not in the window.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    if not in_window(window, zone, now):
        return None
    local = now.astimezone(zone)
    # Candidates: each day's end time, then each midnight (a weekend with an
    # empty nightly window ends at Monday 00:00).
    for days in range(_MAX_DAYS):
        day = local.date() + timedelta(days=days)
        for at in (window.end, time(0, 0)):
            candidate = datetime.combine(day, at, tzinfo=zone)
            if candidate > local and not in_window(window, zone, candidate):
                return candidate
    return None  # pragma: no cover - unreachable: no window lasts nine days


def quiet_delivery(view: DirectoryView, recipient: Person, now: datetime) -> Delivery:
    """How to deliver to ``recipient`` now, as far as quiet hours go.

    Args:
        view: Schools and policies (the recipient's school decides).
        recipient: Who receives.
        now: The instant (aware).

    Returns:
        :attr:`Delivery.SILENT` in the recipient school's quiet hours for their
        role, :attr:`Delivery.NOTIFY` otherwise.

    Raises:
        ModerationUsageError: naive ``now`` or unknown school.
    """
    quiet = view.policy(recipient.uai).quiet_hours
    if recipient.role in quiet.roles and in_window(quiet, view.zone(recipient.uai), now):
        return Delivery.SILENT
    return Delivery.NOTIFY


def night_closed(view: DirectoryView, sender: Person, now: datetime) -> bool:
    """Whether the sender's school closes pupils' sending at this hour.

    Args:
        view: Schools and policies.
        sender: A pupil (other roles are never closed).
        now: The instant (aware).

    Returns:
        Whether the pupil's message must be refused with ``night_closure``.

    Raises:
        ModerationUsageError: naive ``now`` or unknown school.
    """
    closure = view.policy(sender.uai).night_closure
    if sender.role != Role.PUPIL or not closure.enabled:
        return False
    return in_window(closure, view.zone(sender.uai), now)
