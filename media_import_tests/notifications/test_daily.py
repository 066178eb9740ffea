"""When the daily summary is due, and which period it covers: the clock is passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from media_import.notify.daily import last_sent, sent_cursor, summary_due, summary_period

MORNING = datetime(2025, 3, 10, 6, 59, tzinfo=UTC)
AFTER_SEVEN = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)


def test_cursor_round_trip():
    assert last_sent(sent_cursor(date(2025, 3, 10))) == date(2025, 3, 10)
    assert sent_cursor(date(2025, 3, 10)) == '{"last_sent": "2025-03-10"}'


@pytest.mark.parametrize("cursor", [None, "", "not json", "[]", '{"other": 1}', '{"last_sent": 3}'])
def test_unreadable_cursor_means_never_sent(cursor):
    assert last_sent(cursor) is None


def test_due_once_the_hour_has_passed():
    assert not summary_due(None, MORNING, 7)
    assert summary_due(None, AFTER_SEVEN, 7)
    assert summary_due(None, MORNING, 0)


def test_due_once_per_day():
    yesterday = sent_cursor(date(2025, 3, 9))
    today = sent_cursor(date(2025, 3, 10))
    assert summary_due(yesterday, AFTER_SEVEN, 7)
    assert not summary_due(today, AFTER_SEVEN, 7)
    assert not summary_due(today, AFTER_SEVEN.replace(hour=23, minute=59), 7)
    assert summary_due(today, AFTER_SEVEN + timedelta(days=1), 7)


def test_the_hour_is_utc():
    # 08:30 in UTC+2 is 06:30 UTC: before a 07:00 UTC summary.
    plus_two = timezone(timedelta(hours=2))
    assert not summary_due(None, datetime(2025, 3, 10, 8, 30, tzinfo=plus_two), 7)
    assert summary_due(None, datetime(2025, 3, 10, 9, 0, tzinfo=plus_two), 7)


def test_period_is_the_24_hours_before_todays_hour():
    late = datetime(2025, 3, 10, 18, 42, tzinfo=UTC)
    assert summary_period(late, 7) == (
        datetime(2025, 3, 9, 7, tzinfo=UTC),
        datetime(2025, 3, 10, 7, tzinfo=UTC),
    )
    # Back to back, however late the sensor ticks.
    assert summary_period(late + timedelta(days=1), 7)[0] == summary_period(late, 7)[1]


def test_hour_out_of_range_is_refused():
    with pytest.raises(ValueError, match="NOTIFY_SUMMARY_HOUR"):
        summary_due(None, AFTER_SEVEN, 24)
    with pytest.raises(ValueError, match="NOTIFY_SUMMARY_HOUR"):
        summary_period(AFTER_SEVEN, -1)
