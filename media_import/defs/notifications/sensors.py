"""The notification sensors: an e-mail per failed run, and a daily summary.

Both are no-ops (logged, or skipped with a reason) while SMTP_HOST is unset, so the code
location behaves the same with or without notifications configured.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from media_import.db.summary import catalog_figures
from media_import.defs.importing.resources import CatalogDatabase
from media_import.defs.notifications.resources import EmailNotifier
from media_import.notify.daily import last_sent, sent_cursor, summary_due, summary_period
from media_import.notify.email import send_email
from media_import.notify.messages import (
    FailedRun,
    Outcome,
    RunOutcome,
    StepError,
    failure_email,
    summary_email,
)

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

SUMMARY_INTERVAL_SECONDS = 15 * 60

# S3 errors quote whole XML bodies and debug dumps; the e-mail says what broke, the run's page
# in the UI has the rest.
MAX_ERROR_CHARS = 3000

_OUTCOMES: dict[dg.DagsterRunStatus, Outcome] = {
    dg.DagsterRunStatus.SUCCESS: "succeeded",
    dg.DagsterRunStatus.FAILURE: "failed",
    dg.DagsterRunStatus.CANCELED: "canceled",
}


class NotificationError(Exception):
    """An e-mail could not be sent; the message says to whom, through which server, and why."""


@dg.run_failure_sensor(
    name="email_on_run_failure",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="E-mails every failed run of this code location's jobs to NOTIFY_TO "
    "(off while SMTP_HOST is unset).",
)
def email_on_run_failure(
    context: dg.RunFailureSensorContext, email_notifier: EmailNotifier
) -> None:
    run = context.dagster_run
    if not email_notifier.enabled:
        context.log.info(f"run {run.run_id} failed; no e-mail sent: SMTP_HOST is not set")
        return
    subject, body = failure_email(failed_run(context), email_notifier.ui_url)
    try:
        _send(email_notifier, subject, body)
    except NotificationError as exc:
        context.log.error(str(exc))
        # Dagster moves this sensor's cursor past the run even when we raise, so the alert is
        # not retried: say so on the failed run itself, where whoever looks at it will see it.
        context.instance.report_engine_event(
            f"The failure of this run could not be e-mailed: {exc}", dagster_run=run
        )
        raise
    context.log.info(f"e-mailed the failure of run {run.run_id}: {subject}")


def failed_run(context: dg.RunFailureSensorContext) -> FailedRun:
    """The failed run as plain data: the run-level error (if any) and each failed step's."""
    run = context.dagster_run
    errors = [
        StepError(event.step_key, error_text(event.step_failure_data.error))
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    ]
    # When steps failed, the run's own error repeats the first of them; otherwise (resources
    # that would not start, a crashed run worker) it is the only explanation there is.
    run_error = context.failure_event.job_failure_data.error
    if not errors and run_error is not None:
        errors.append(StepError(None, error_text(run_error)))
    return FailedRun(
        job=run.job_name,
        run_id=run.run_id,
        message=context.failure_event.message or "The run failed.",
        tags=dict(run.tags),
        errors=tuple(errors),
    )


def error_text(error: SerializableErrorInfo) -> str:
    """The messages of an error and of its causes, without stack traces."""
    parts: list[str] = []
    current: SerializableErrorInfo | None = error
    while current is not None:
        # obstore appends a Rust debug dump of the request to its errors: noise in an e-mail.
        message = current.message.split("\n\nDebug source:", 1)[0].strip()
        # Dagster's own messages often omit the class ("Exceeded max_retries of 3").
        first_line = message.splitlines()[0] if message else ""
        parts.append(
            message if current.cls_name in first_line else f"{current.cls_name}: {message}"
        )
        current = current.cause or current.context
    text = "\ncaused by: ".join(parts)
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS].rstrip() + "\n[... cut; the run's page has the whole error]"
    return text


def build_daily_summary_sensor(
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dg.SensorDefinition:
    """The daily summary sensor; tests pass their own `clock`, the code location the real one."""

    @dg.sensor(
        name="daily_summary_email",
        minimum_interval_seconds=SUMMARY_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Once a day, after NOTIFY_SUMMARY_HOUR (UTC), e-mails the previous 24 "
        "hours: runs by status, failed runs, and what changed in the catalog.",
    )
    def daily_summary_email(
        context: dg.SensorEvaluationContext,
        email_notifier: EmailNotifier,
        catalog: CatalogDatabase,
    ) -> dg.SensorResult | dg.SkipReason:
        if not email_notifier.enabled:
            return dg.SkipReason("notifications are off: SMTP_HOST is not set")
        now, hour = clock(), email_notifier.summary_hour
        if not summary_due(context.cursor, now, hour):
            sent = last_sent(context.cursor)
            return dg.SkipReason(
                f"not due: sent once a day after {hour:02d}:00 UTC; "
                f"last sent for {sent.isoformat() if sent else 'no day yet'}"
            )
        since, until = summary_period(now, hour)
        with catalog.connect() as conn:
            figures = catalog_figures(conn, since, until)
        runs = run_outcomes(context.instance, since, until)
        subject, body = summary_email(since, until, runs, figures, email_notifier.ui_url)
        # Raising before the cursor moves means the next tick tries again.
        _send(email_notifier, subject, body)
        context.log.info(f"sent the daily summary: {subject}")
        return dg.SensorResult(
            cursor=sent_cursor(now.astimezone(UTC).date()),
            skip_reason=f"sent: {subject}",
        )

    return daily_summary_email


def run_outcomes(
    instance: dg.DagsterInstance, since: datetime, until: datetime
) -> Sequence[RunOutcome]:
    """The runs created in [since, until), oldest first."""
    records = instance.get_run_records(
        dg.RunsFilter(created_after=since, created_before=until), ascending=True
    )
    return [
        RunOutcome(
            job=r.dagster_run.job_name,
            run_id=r.dagster_run.run_id,
            outcome=_OUTCOMES.get(r.dagster_run.status, "in progress"),
            tags=dict(r.dagster_run.tags),
        )
        for r in records
    ]


def _send(notifier: EmailNotifier, subject: str, body: str) -> None:
    try:
        settings = notifier.settings()
    except ValueError as exc:
        raise NotificationError(f"notification settings: {exc}") from exc
    try:
        send_email(settings, subject, body)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotificationError(
            f"could not send {subject!r} to {', '.join(settings.recipients)} through "
            f"{settings.host}:{settings.port}: {type(exc).__name__}: {exc}"
        ) from exc


daily_summary_email = build_daily_summary_sensor()
