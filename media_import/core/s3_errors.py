"""S3 failures sorted by what they mean for a run.

* A setting to fix (credentials refused, expired token, clock skew, missing bucket, wrong
  region, an endpoint that does not speak S3): `StorageError`, which fails the run at once
  with one message naming the setting, and rejects nothing.
* Unavailable (5xx, throttling, dropped connections, timeouts) after the client's own
  retries: `S3Unavailable`, a ConnectionError, which the step retries later.
* About one listed object only (deleted or overwritten since it was listed, archived,
  encrypted with a customer key, a body that does not match its listing): that read's
  result, so it decides that object's asset alone.

obstore and botocore report S3's answers as text: the HTTP status and S3's error code are
read from it.
"""

from __future__ import annotations

import re

from media_import.core.s3_connection import S3Config, StorageError

_STATUS = re.compile(r"(?:status code: |HTTP )(\d{3})")
_CODE = re.compile(r"<Code>\s*([A-Za-z.]+)\s*</Code>")
_BOTO_CODE = re.compile(r"An error occurred \(([A-Za-z.]+)\)")

# Answers about the object itself, not about how it is reached: its asset's outcome.
OBJECT_CODES = frozenset(
    {"NoSuchKey", "PreconditionFailed", "InvalidObjectState", "InvalidRange", "InvalidRequest"}
)
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
    }
)
_UNREACHABLE = (
    "connection refused",
    "error trying to connect",
    "dns error",
    "failed to lookup",
    "name or service not known",
    "could not connect",
    "connect timeout",
    "timed out",
    "connection reset",
    "connection closed",
    "unexpected eof",
    "endpoint url",
    "tcp connect",
)
_TLS = ("certificate", "ssl", "tls", "handshake")
_NO_CONNECTION = (
    "connection refused",
    "error trying to connect",
    "dns error",
    "failed to lookup",
    "name or service not known",
    "could not connect",
    "tcp connect",
    "error sending request",
    "endpoint url",
)


class S3Unavailable(ConnectionError):
    """The endpoint still failed after the client's retries: down, overloaded or unreachable.
    `unreachable`: no connection could be made at all (a wrong endpoint can cause that; an
    overloaded one answers)."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable

    def __reduce__(self) -> tuple[type[S3Unavailable], tuple[str, bool]]:
        return (type(self), (str(self), self.unreachable))


class ObjectReadError(Exception):
    """One listed object could not be read as listed; its asset alone is affected."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason

    def __reduce__(self) -> tuple[type[ObjectReadError], tuple[str, str]]:
        return (type(self), (self.key, self.reason))


class ObjectGone(ObjectReadError):
    """Deleted (404) or overwritten (412 on If-Match) since it was listed."""


class BodyMismatch(ObjectReadError):
    """The body read does not match the listing (length, or the MD5 of a plain-MD5 ETag)."""


def status_and_code(exc: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and S3's error code an exception reports, where it says them."""
    text = str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        error = response.get("Error", {})
        meta = response.get("ResponseMetadata", {})
        code = error.get("Code")
        status = meta.get("HTTPStatusCode")
        return (int(status) if status else None), (str(code) if code else None)
    status = _STATUS.search(text)
    code = _CODE.search(text) or _BOTO_CODE.search(text)
    return (int(status.group(1)) if status else None), (code.group(1) if code else None)


def is_object_answer(exc: BaseException) -> bool:
    """An answer about the object alone (missing, changed, archived, not readable as such)."""
    from obstore.exceptions import NotFoundError, PreconditionError

    if isinstance(exc, NotFoundError | PreconditionError | FileNotFoundError):
        return True
    status, code = status_and_code(exc)
    if code == "NoSuchBucket":
        return False
    return code in OBJECT_CODES or status in (404, 412, 416)


def is_transient(exc: BaseException) -> bool:
    status, code = status_and_code(exc)
    if code in TRANSIENT_CODES or (status is not None and (status >= 500 or status == 429)):
        return True
    if status is not None:
        return False
    lowered = str(exc).lower()
    return isinstance(exc, ConnectionError | TimeoutError) or any(
        s in lowered for s in _UNREACHABLE
    )


def setting_message(config: S3Config, exc: BaseException) -> str | None:
    """The message naming the setting to check, for an error a setting can cause; else None."""
    status, code = status_and_code(exc)
    bucket, where = config.bucket, config.where
    creds = config.credentials_hint()
    if code == "NoSuchBucket" or (status == 404 and code is None):
        return f"bucket {bucket!r} does not exist at {where} (check BUCKET_NAME)"
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId"):
        return f"S3 at {where} refused the credentials ({code}): check {creds}"
    if code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken", "RequestExpired"):
        return (
            f"S3 at {where} refused the session token ({code}): the temporary credentials "
            f"have expired or are invalid; renew them (check {creds})"
        )
    if code == "RequestTimeTooSkewed":
        return (
            f"S3 at {where} refused the requests because this machine's clock is off by more "
            "than 15 minutes (RequestTimeTooSkewed): set the clock (NTP)"
        )
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraint"):
        return f"bucket {bucket!r} is in another region than configured ({code}): check AWS_REGION"
    if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem") or status in (401, 403):
        return (
            f"access to bucket {bucket!r} at {where} was refused ({code or status}): check "
            f"{creds}, and that the bucket's policy lets them list and read it"
        )
    lowered = str(exc).lower()
    if status is None and any(s in lowered for s in _TLS) and "certificate" in lowered:
        return (
            f"the TLS certificate of {where} is not trusted (check AWS_CA_BUNDLE, or "
            "S3_ENDPOINT_URL)"
        )
    return None


def unreachable_message(config: S3Config, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot reach the S3 endpoint {config.where} after {config.max_attempts} attempts "
        f"(check S3_ENDPOINT_URL, or whether the server is up): {first[:300]}"
    )


def raise_for_run(config: S3Config, exc: BaseException) -> None:
    """Raise what a failed request means for the run: StorageError for a setting,
    S3Unavailable for an outage (after the client's retries); return for anything else."""
    if isinstance(exc, StorageError | S3Unavailable):
        raise exc
    message = setting_message(config, exc)
    if message is not None:
        raise StorageError(message) from exc
    if is_transient(exc):
        status, _ = status_and_code(exc)
        unreachable = status is None and any(s in str(exc).lower() for s in _NO_CONNECTION)
        raise S3Unavailable(unreachable_message(config, exc), unreachable) from exc
