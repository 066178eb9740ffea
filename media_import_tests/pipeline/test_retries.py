"""Which failures the import's steps retry: only what can heal by waiting."""

from __future__ import annotations

import socket

import psycopg
import pytest

from media_import.core.storage import Bucket, S3Config, S3Unavailable, StorageError
from media_import.defs.importing.retries import is_transient


def _list_error(config: S3Config) -> BaseException:
    with pytest.raises(Exception) as caught:
        list(Bucket(config).list_pages(prefix="X/"))
    return caught.value


def test_a_missing_bucket_is_a_setting_to_fix_not_retried(s3_server, monkeypatch):
    # With the configured keys or, without them, the default chain's (the environment's here).
    expected = f"bucket 'no-such-bucket' does not exist at {s3_server.endpoint_url}"
    error = _list_error(S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1", "a", "b"))
    assert isinstance(error, StorageError) and str(error).startswith(expected)
    assert not is_transient(error)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    keyless = S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1")
    error = _list_error(keyless)
    assert isinstance(error, StorageError) and str(error).startswith(expected)
    with pytest.raises(StorageError, match="check BUCKET_NAME"):
        Bucket(keyless).top_level_folders()


def test_an_endpoint_that_stays_down_is_unavailable_and_retried():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    config = S3Config("bkt", gone, "us-east-1", "a", "b", max_attempts=2)
    error = _list_error(config)
    assert isinstance(error, S3Unavailable) and is_transient(error)
    assert str(error).startswith(f"cannot reach the S3 endpoint {gone} after 2 attempts")


def test_dropped_connections_and_timeouts_are_retried():
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate key"))


def test_a_run_against_a_missing_bucket_fails_at_once_with_a_clear_message(
    pipeline, monkeypatch, s3_env
):
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    run = pipeline.run("VHS")
    assert not run.success
    events = {e.event_type_value for e in run.result.all_events}
    assert "STEP_UP_FOR_RETRY" not in events
    # One message naming the setting, as the command line gives it.
    assert run.step_failures()["s3_objects"] == (
        f"bucket 'no-such-bucket' does not exist at {s3_env['S3_ENDPOINT_URL']} (check BUCKET_NAME)"
    )


def test_a_run_without_any_credentials_fails_at_once_saying_where_to_put_them(
    pipeline, s3_env, no_chain
):
    # No keys configured and none the default chain could find.
    run = pipeline.run("VHS")
    assert not run.success
    assert "STEP_UP_FOR_RETRY" not in {e.event_type_value for e in run.result.all_events}
    assert run.step_failures()["s3_objects"] == (
        f"no credentials for bucket {s3_env['BUCKET_NAME']!r}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or give the AWS default chain some (AWS_PROFILE, a shared "
        "credentials file, an instance or container role, web identity)"
    )
