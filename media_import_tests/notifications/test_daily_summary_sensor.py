"""daily_summary_email: runs of the instance and catalog figures, e-mailed once a day."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from media_import.db.migrate import migrate
from media_import.defs.importing.resources import resources_from_env
from media_import.defs.notifications.resources import notifier_from_env
from media_import.defs.notifications.sensors import NotificationError, build_daily_summary_sensor
from media_import.notify.daily import sent_cursor
from media_import_tests.notifications.catalog_rows import add_asset, add_file, add_rejection
from media_import_tests.notifications.conftest import UI_URL, Mailbox, free_port, run_import


def _evaluate(
    clock: Callable[[], datetime], instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    sensor = build_daily_summary_sensor(clock)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "email_notifier": notifier_from_env(),
            "catalog": resources_from_env()["catalog"],
        },
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def _an_hour_that_has_just_passed(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """A clock a few minutes past the summary hour, whose period ends after now: the runs this
    test makes now fall inside it."""
    moment = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=5, second=0, microsecond=0)
    monkeypatch.setenv("NOTIFY_SUMMARY_HOUR", str(moment.hour))
    return moment


def _fill_catalog(database_url: str, since: datetime, until: datetime) -> None:
    inside, before = since + timedelta(hours=3), since - timedelta(hours=2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_asset(conn, "VO-BRD-00001", imported_at=inside)
        add_asset(conn, "VO-BRD-00002", imported_at=before, deleted_at=inside)
        add_asset(conn, "VO-BRD-00003", imported_at=before)
        add_file(conn, "VO-BRD-00001", "BRD/VO-BRD-00001.json", imported_at=inside)
        add_file(conn, "VO-BRD-00001", "BRD/VO-BRD-00001.md5", imported_at=inside)
        add_file(conn, "VO-BRD-00001", "BRD/VO-BRD-00001.pdf", imported_at=inside)
        add_file(conn, "VO-BRD-00002", "BRD/VO-BRD-00002.json", before, deleted_at=inside)
        add_file(conn, "VO-BRD-00003", "BRD/VO-BRD-00003.json", before, deleted_at=before)
        add_rejection(conn, "BRD/new.mp4", first_seen_at=inside)
        add_rejection(conn, "BRD/old.mp4", first_seen_at=before)
        add_rejection(conn, "BRD/fixed.mp4", first_seen_at=before, resolved_at=inside)


def _make_runs(instance: dg.DagsterInstance, s3_env: dict[str, str], monkeypatch) -> dg.DagsterRun:
    """A succeeded, a failed and a canceled run; returns the failed one."""
    ok = run_import(instance, "EMPTY")  # a folder with nothing in it imports fine
    assert ok.status == dg.DagsterRunStatus.SUCCESS
    monkeypatch.setenv("DATABASE_URL", s3_env["DATABASE_URL"] + "_missing")
    failed = run_import(instance, folder_key="Citt%C3%A0")
    assert failed.status == dg.DagsterRunStatus.FAILURE
    monkeypatch.setenv("DATABASE_URL", s3_env["DATABASE_URL"])
    instance.add_run(
        dg.DagsterRun(
            job_name="bucket_inventory_job",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.CANCELED,
        )
    )
    return failed


def test_sends_the_summary_once_a_day(s3_env, smtp_env: Mailbox, monkeypatch, instance):
    migrate(s3_env["DATABASE_URL"])
    now = _an_hour_that_has_just_passed(monkeypatch)
    until = now.replace(minute=0)
    since = until - timedelta(days=1)
    _fill_catalog(s3_env["DATABASE_URL"], since, until)
    failed = _make_runs(instance, s3_env, monkeypatch)

    result = _evaluate(lambda: now, instance)

    assert isinstance(result, dg.SensorResult)
    assert result.cursor == sent_cursor(now.date())
    (mail,) = smtp_env.received
    assert mail.subject == f"[media_import] daily summary {now:%Y-%m-%d}: 3 runs, 1 failed"
    body = mail.body
    assert f"Period: {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC\n" in body
    assert "Runs: 3\n  succeeded: 1\n  failed:    1\n  canceled:  1\n" in body
    assert f"Failed runs:\n  import_folder  Città  {UI_URL}runs/{failed.run_id}\n" in body
    for line in (
        "assets imported:       1",
        "files imported:        3",
        "assets soft-deleted:   1",
        "files soft-deleted:    1",
        "rejections first seen: 1",
        "rejections resolved:   1",
        "rejections open now:   2",
    ):
        assert f"  {line}\n" in body

    # Later the same day: nothing more.
    again = _evaluate(lambda: now + timedelta(hours=3), instance, cursor=result.cursor)
    assert isinstance(again, dg.SkipReason)
    assert "not due" in (again.skip_message or "")
    assert len(smtp_env.received) == 1

    # The next day covers the next 24 hours, which hold none of today's runs.
    next_day = _evaluate(lambda: now + timedelta(days=1), instance, cursor=result.cursor)
    assert isinstance(next_day, dg.SensorResult)
    assert next_day.cursor == sent_cursor((now + timedelta(days=1)).date())
    assert len(smtp_env.received) == 2
    assert smtp_env.received[1].subject.endswith(": 0 runs, 0 failed")
    assert "  rejections open now:   2\n" in smtp_env.received[1].body


def test_nothing_before_the_hour(s3_env, smtp_env: Mailbox, monkeypatch, instance):
    monkeypatch.setenv("NOTIFY_SUMMARY_HOUR", "7")
    early = datetime(2025, 3, 10, 6, 59, tzinfo=UTC)

    result = _evaluate(lambda: early, instance)

    assert isinstance(result, dg.SkipReason)
    assert "after 07:00 UTC" in (result.skip_message or "")
    assert smtp_env.received == []


def test_skipped_while_notifications_are_off(s3_env, monkeypatch, instance, smtp_server):
    monkeypatch.delenv("SMTP_HOST", raising=False)

    result = _evaluate(lambda: datetime.now(UTC), instance)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "notifications are off: SMTP_HOST is not set"
    assert smtp_server.received == []


def test_an_unreachable_smtp_server_raises_so_the_next_tick_retries(
    s3_env, smtp_env: Mailbox, monkeypatch, instance
):
    migrate(s3_env["DATABASE_URL"])
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    monkeypatch.setenv("NOTIFY_SUMMARY_HOUR", "0")

    with pytest.raises(NotificationError, match="daily summary"):
        _evaluate(lambda: datetime.now(UTC), instance)
