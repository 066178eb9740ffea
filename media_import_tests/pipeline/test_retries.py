"""Which failures the import's steps retry: only what can heal by waiting."""

from __future__ import annotations

import obstore.exceptions
import psycopg
import pytest

from media_import.core.s3_get import S3ReadError
from media_import.core.storage import Bucket, S3Config
from media_import.defs.importing.retries import is_transient


def _list_error(config: S3Config) -> BaseException:
    with pytest.raises(Exception) as caught:
        list(Bucket(config).list_pages(prefix="X/"))
    return caught.value


def test_a_missing_bucket_is_not_retried(s3_server, monkeypatch):
    # With keys, s3_list lists; without, obstore, with the default chain's credentials (here
    # the environment's).
    error = _list_error(S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1", "a", "b"))
    assert isinstance(error, S3ReadError)
    assert error.code == "NoSuchBucket"
    assert not is_transient(error)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    error = _list_error(S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1"))
    assert isinstance(error, obstore.exceptions.GenericError)
    assert "NoSuchBucket" in str(error)
    assert not is_transient(error)


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
