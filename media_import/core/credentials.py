"""The AWS default credential chain, for a bucket configured without keys.

botocore resolves it as every AWS tool does (environment, shared credentials and config files
with their profiles, SSO, credential_process, web identity, container and instance
metadata), and its credentials refresh themselves before they expire. Resolving it here, and
not leaving it to obstore, lets keyless configurations (an instance profile, the usual
production set-up) list through `s3_list` and read through `s3_get` as configured keys do,
and gives obstore's remaining calls the same credentials.

The chain is resolved once per process and environment: a session and its providers take
tens of milliseconds, and a miss probes the instance metadata service, which costs a timeout
off EC2. A miss is retried after a minute, since a long-lived sensor process may outlive it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import botocore.session
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from obstore.store import S3Credential

# What botocore's chain reads from the environment: a change of any of them (a test, a
# re-configured process) resolves the chain again.
CHAIN_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_DEFAULT_REGION",
)
MISS_RETRY_SECONDS = 60.0
# How long obstore may keep one answer of the provider before asking again; botocore's own
# refresh starts 15 minutes before temporary credentials expire, so 5 minutes stays inside it.
OBSTORE_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class Chain:
    """What the default chain resolved: credentials (None: none found) and the region its
    configuration names (AWS_DEFAULT_REGION, the profile's `region`), if any."""

    credentials: Credentials | None
    region: str | None


_lock = threading.Lock()
_cache: dict[tuple[str | None, ...], tuple[Chain, float]] = {}


def default_chain() -> Chain:
    """The default chain's credentials and region, resolved once per environment."""
    key = tuple(os.environ.get(name) for name in CHAIN_VARIABLES)
    with _lock:  # one resolution at a time: concurrent misses would each probe the metadata
        cached = _cache.get(key)
        if cached is not None:
            chain, resolved_at = cached
            if chain.credentials is not None or time.monotonic() - resolved_at < MISS_RETRY_SECONDS:
                return chain
        chain = _resolve()
        _cache[key] = (chain, time.monotonic())
        return chain


def _resolve() -> Chain:
    session = botocore.session.get_session()
    region = session.get_config_variable("region")
    return Chain(session.get_credentials(), str(region) if region else None)


def frozen(credentials: Credentials) -> tuple[str, str, str | None]:
    """Access key, secret key and session token as of now (refreshed first if they are about
    to expire)."""
    now = credentials.get_frozen_credentials()
    if not (now.access_key and now.secret_key):
        raise ValueError("the default credential chain returned credentials without keys")
    return now.access_key, now.secret_key, now.token


class ObstoreCredentials:
    """obstore's `credential_provider` over the chain's credentials. Not obstore's own
    `auth.boto3.Boto3CredentialProvider`: it takes a session and resolves the chain again."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def __call__(self) -> S3Credential:
        access_key, secret_key, token = frozen(self.credentials)
        return {
            "access_key_id": access_key,
            "secret_access_key": secret_key,
            "token": token,
            "expires_at": datetime.now(UTC) + OBSTORE_TTL,
        }
