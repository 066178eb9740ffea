"""email_on_run_failure on real failed runs of the import job, e-mailing a real SMTP server."""

from __future__ import annotations

import dagster as dg
import pytest

from media_import.defs.notifications.resources import notifier_from_env
from media_import.defs.notifications.sensors import NotificationError, email_on_run_failure
from media_import_tests.notifications.conftest import (
    RECIPIENTS,
    UI_URL,
    Mailbox,
    failure_event,
    free_port,
    run_import,
)


def _evaluate(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="email_on_run_failure",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure_event(instance, run),
        resources={"email_notifier": notifier_from_env()},
    )
    email_on_run_failure(context)


def test_a_failed_step_is_emailed_with_job_folder_run_and_error(
    s3_env, smtp_env: Mailbox, monkeypatch, instance
):
    # A folder whose name needs encoding, in a bucket that does not exist.
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    run = run_import(instance, "Nastri%20audio")
    assert run.status == dg.DagsterRunStatus.FAILURE

    _evaluate(instance, run)

    (mail,) = smtp_env.received
    assert mail.rcpt_tos == list(RECIPIENTS)
    assert mail.subject == "[media_import] import_folder failed: Nastri audio"
    assert "Job:    import_folder\n" in mail.body
    assert "Folder: Nastri audio\n" in mail.body
    assert f"Run id: {run.run_id}\n" in mail.body
    assert f"Run:    {UI_URL}runs/{run.run_id}\n" in mail.body
    assert "Steps failed: ['s3_objects']" in mail.body
    assert "\nStep s3_objects:\n" in mail.body
    assert "does not exist" in mail.body and "(check BUCKET_NAME)" in mail.body
    assert "\nRun:\n" not in mail.body  # the run's own error would repeat the step's
    assert "Debug source" not in mail.body
    assert "Stack Trace" not in mail.body and 'File "' not in mail.body


def test_a_run_that_fails_before_any_step_is_emailed_with_its_error(
    s3_env, smtp_env: Mailbox, monkeypatch, instance
):
    # The catalog database is unreachable: the run fails while starting its resources.
    monkeypatch.setenv("DATABASE_URL", s3_env["DATABASE_URL"] + "_missing")
    run = run_import(instance, "BRD")
    assert run.status == dg.DagsterRunStatus.FAILURE

    _evaluate(instance, run)

    (mail,) = smtp_env.received
    assert mail.subject == "[media_import] import_folder failed: BRD"
    assert "An exception was thrown during execution" in mail.body
    assert "\nRun:\n  dagster._core.errors.DagsterResourceFunctionError" in mail.body
    assert "cannot connect to the catalog database" in mail.body
    assert "_missing" in mail.body


def test_notifications_off_without_smtp_host(s3_env, monkeypatch, instance, smtp_server):
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.setenv("NOTIFY_TO", "ops@archive.example")
    monkeypatch.setenv("DATABASE_URL", s3_env["DATABASE_URL"] + "_missing")
    run = run_import(instance, "BRD")

    _evaluate(instance, run)  # no error

    assert smtp_server.received == []


def test_an_unreachable_smtp_server_fails_the_tick_and_marks_the_run(
    s3_env, smtp_env: Mailbox, monkeypatch, instance
):
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("DATABASE_URL", s3_env["DATABASE_URL"] + "_missing")
    run = run_import(instance, "BRD")

    with pytest.raises(NotificationError, match=r"could not send .* through 127\.0\.0\.1:\d+"):
        _evaluate(instance, run)

    # Dagster will not retry this alert: whoever opens the run sees that it was not sent.
    logs = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    notes = [e.message for e in logs if "could not be e-mailed" in e.message]
    assert len(notes) == 1 and "ConnectionRefusedError" in notes[0]
    assert smtp_env.received == []


def test_the_code_location_has_the_sensors_and_the_notifier(s3_env, smtp_env):
    from media_import.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    failure = repository.get_sensor_def("email_on_run_failure")
    summary = repository.get_sensor_def("daily_summary_email")
    assert failure.default_status == dg.DefaultSensorStatus.RUNNING
    assert summary.default_status == dg.DefaultSensorStatus.RUNNING
    assert summary.minimum_interval_seconds == 15 * 60
    assert {"email_notifier", "catalog"} <= set(defs.resources)
