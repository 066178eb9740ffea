"""Retries for transient failures only.

A RetryPolicy would also retry deterministic errors (a bug, a constraint violation) three
times; here only what can heal by waiting is retried: dropped PostgreSQL connections, S3
network errors that outlasted obstore's own request retries, timeouts. Every asset's writes are
idempotent, so a retried step never duplicates anything.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import obstore.exceptions
import psycopg

from media_import.core.s3_get import S3ReadError
from media_import.core.storage import S3Config, StorageError, describe_storage_error

MAX_RETRIES = 3
BASE_DELAY_SECONDS = 2.0

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    obstore.exceptions.GenericError,
    ConnectionError,
    TimeoutError,
)


# obstore reports every S3 failure as GenericError: the ones that name a setting to fix are not
# worth waiting for (a missing bucket retried three times only delays the failure e-mail).
_PERMANENT_S3_ANSWERS = (
    "nosuchbucket",
    "accessdenied",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "status code: 403",
    "status code: 404",
)


def is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, TRANSIENT_ERRORS):
        return False
    if isinstance(exc, obstore.exceptions.GenericError):
        text = str(exc).lower()
        return not any(answer in text for answer in _PERMANENT_S3_ANSWERS)
    return True


@contextmanager
def transient_retries(
    context: dg.AssetExecutionContext, storage: S3Config | None = None
) -> Iterator[None]:
    """Retry transient errors with backoff; turn S3 answers that name a setting to fix into
    one clear failure (as the command line's preflight does)."""
    try:
        yield
    except StorageError as exc:  # no credentials anywhere: a setting to fix, already worded
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except S3ReadError as exc:  # S3's answer to a listing: NoSuchBucket, AccessDenied, ...
        if storage is None:
            raise
        raise dg.Failure(
            description=describe_storage_error(storage, exc), allow_retries=False
        ) from exc
    except TRANSIENT_ERRORS as exc:
        if not is_transient(exc):
            if storage is not None and isinstance(exc, obstore.exceptions.GenericError):
                raise dg.Failure(
                    description=describe_storage_error(storage, exc), allow_retries=False
                ) from exc
            raise
        wait = BASE_DELAY_SECONDS * 2**context.retry_number  # exponential backoff
        context.log.warning(f"transient error, retrying in {wait:.0f}s: {exc}")
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from exc
