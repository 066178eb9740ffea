"""When the daily summary is due and which period it covers; the clock is always passed in."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

DEFAULT_SUMMARY_HOUR = 7


def last_sent(cursor: str | None) -> date | None:
    """The day of the last summary sent, from the sensor's cursor `{"last_sent": "YYYY-MM-DD"}`.

    An unreadable cursor counts as "never sent": one extra summary beats a silent stop.
    """
    try:
        return date.fromisoformat(json.loads(cursor or "")["last_sent"])
    except (ValueError, TypeError, KeyError):
        return None


def sent_cursor(day: date) -> str:
    return json.dumps({"last_sent": day.isoformat()})


def summary_due(cursor: str | None, now: datetime, hour: int = DEFAULT_SUMMARY_HOUR) -> bool:
    """True once `hour` (UTC) has passed today and no summary was sent for today yet."""
    _check_hour(hour)
    now = now.astimezone(UTC)
    sent = last_sent(cursor)
    return now.hour >= hour and (sent is None or sent < now.date())


def summary_period(now: datetime, hour: int = DEFAULT_SUMMARY_HOUR) -> tuple[datetime, datetime]:
    """The 24 hours before today's summary hour (UTC).

    Anchored on the hour rather than on `now`, so consecutive summaries cover back-to-back
    periods even when the sensor ticks late or the daemon was down for a while.
    """
    _check_hour(hour)
    until = datetime.combine(now.astimezone(UTC).date(), time(hour), tzinfo=UTC)
    return until - timedelta(days=1), until


def _check_hour(hour: int) -> None:
    if not 0 <= hour <= 23:
        raise ValueError(f"NOTIFY_SUMMARY_HOUR must be an hour from 0 to 23 (UTC), not {hour}")
