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

MAX_RETRIES = 3
BASE_DELAY_SECONDS = 2.0

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    obstore.exceptions.GenericError,
    ConnectionError,
    TimeoutError,
)


@contextmanager
def transient_retries(context: dg.AssetExecutionContext) -> Iterator[None]:
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        wait = BASE_DELAY_SECONDS * 2**context.retry_number  # exponential backoff
        context.log.warning(f"transient error, retrying in {wait:.0f}s: {exc}")
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from exc
