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
    # Listed through s3_list with the configured keys or, without them, the default chain's
    # (here the environment's); obstore's calls answer the same.
    error = _list_error(S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1", "a", "b"))
    assert isinstance(error, S3ReadError)
    assert error.code == "NoSuchBucket"
    assert not is_transient(error)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    keyless = S3Config("no-such-bucket", s3_server.endpoint_url, "us-east-1")
    error = _list_error(keyless)
    assert isinstance(error, S3ReadError) and error.code == "NoSuchBucket"
    with pytest.raises(obstore.exceptions.GenericError) as caught:
        Bucket(keyless).top_level_folders()
    assert "NoSuchBucket" in str(caught.value)
    assert not is_transient(caught.value)


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
