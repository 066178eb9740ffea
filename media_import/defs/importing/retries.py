"""Retries for transient failures only.

A RetryPolicy would also retry deterministic errors (a bug, a constraint violation) three
times; here only what can heal by waiting is retried: dropped PostgreSQL connections, S3
outages that outlasted the S3 clients' own retries (S3Unavailable), timeouts. Every asset's
writes are idempotent, so a retried step never duplicates anything. An S3 failure a setting
can cause (StorageError: refused credentials, a missing bucket, an endpoint that does not
speak S3) fails the run at once, naming the setting.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import obstore.exceptions
import psycopg

from media_import.core import s3_errors
from media_import.core.storage import S3Config, StorageError, describe_storage_error

MAX_RETRIES = 3
BASE_DELAY_SECONDS = 2.0

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    obstore.exceptions.BaseError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, TRANSIENT_ERRORS):
        return False
    if isinstance(exc, obstore.exceptions.BaseError):  # one the storage layer did not sort
        return s3_errors.is_transient(exc)
    return True


@contextmanager
def transient_retries(
    context: dg.AssetExecutionContext, storage: S3Config | None = None
) -> Iterator[None]:
    """Retry transient errors with backoff; turn S3 answers that name a setting to fix into
    one clear failure (as the command line's preflight does)."""
    try:
        yield
    except StorageError as exc:  # a setting to fix, already worded
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except TRANSIENT_ERRORS as exc:
        if not is_transient(exc):
            if storage is not None and isinstance(exc, obstore.exceptions.BaseError):
                raise dg.Failure(
                    description=describe_storage_error(storage, exc), allow_retries=False
                ) from exc
            raise
        wait = BASE_DELAY_SECONDS * 2**context.retry_number  # exponential backoff
        context.log.warning(f"transient error, retrying in {wait:.0f}s: {exc}")
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from exc
