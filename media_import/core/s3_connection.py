"""How to reach the bucket: the settings, and the two maintained clients built from them.

obstore (Rust's object_store) does every read that scales with the archive: listing pages,
whole and ranged GETs, streamed hashing. botocore does the few requests whose answer must be
checked as S3's own XML (the end of every listing, the pages obstore cannot represent, the
top-level folders, the start-up check), because object_store takes any 200 answer for a
listing: an HTML login page lists as an empty folder.

Both are configured from one `S3Config`, with the AWS conventions botocore users know: the
endpoint (absent: AWS, in the region's partition), path-style addressing (forced for bucket
names with dots, which AWS's wildcard certificate does not cover, and for custom endpoints),
`AWS_CA_BUNDLE`, `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, and the default credential chain
(environment, profiles, SSO, web identity, container and instance roles) when no keys are set.
Secrets are `SecretStr`: a config's repr, a pickled planning job's and every message show them
masked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from obstore.store import S3Store

DEFAULT_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 10
REQUEST_TIMEOUT_S = 60
DEFAULT_REGION = "us-east-1"


class StorageError(RuntimeError):
    """The bucket cannot be used as configured; the message names the setting to check."""


@dataclass(frozen=True)
class S3Config:
    """Everything a process needs to read the bucket; picklable, secrets masked in its repr."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile_name: str | None = None
    use_ssl: bool = True
    # False: do not verify TLS certificates (as botocore's verify=False); None or True: verify.
    verify: bool | None = None
    ca_bundle: str | None = None  # a PEM file of extra trusted CAs (AWS_CA_BUNDLE)
    force_path_style: bool = False
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    unsigned: bool = False  # anonymous requests, for a public bucket
    # Proxies as the environment gives them when the config is built (HTTPS_PROXY, ...).
    proxies: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("secret_access_key", "session_token"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, SecretStr(value) if value else None)
        if not self.proxies:
            object.__setattr__(self, "proxies", proxies_from_env())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"S3Config({shown})"

    @property
    def has_keys(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    @property
    def path_style(self) -> bool:
        """Path-style requests: asked for, a custom endpoint, or a bucket name with dots."""
        return self.force_path_style or bool(self.endpoint_url) or "." in self.bucket

    @property
    def where(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region or DEFAULT_REGION})"

    def credentials_hint(self) -> str:
        """The settings that supplied the credentials, for messages."""
        if self.has_keys:
            return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" + (
                " and AWS_SESSION_TOKEN" if self.session_token else ""
            )
        if self.profile_name:
            return f"the profile {self.profile_name!r} (AWS_PROFILE)"
        return "the default chain's credentials: AWS_PROFILE, the instance or container role"


def proxies_from_env(env: os._Environ[str] | dict[str, str] | None = None) -> dict[str, str]:
    """HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case), as botocore and curl read them."""
    env = os.environ if env is None else env
    found = {}
    for name in ("https_proxy", "http_proxy", "no_proxy"):
        value = env.get(name) or env.get(name.upper())
        if value:
            found[name] = value
    return found


def no_credentials_message(config: S3Config) -> str:
    return (
        f"no credentials for bucket {config.bucket!r}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or give the AWS default chain some (AWS_PROFILE, a shared "
        "credentials file, an instance or container role, web identity)"
    )


# -- obstore ---------------------------------------------------------------------------------


def open_store(config: S3Config, concurrency: int) -> S3Store:
    """The obstore client for the bucket, one per process and configuration, so that its
    connections are reused from folder to folder. Raises StorageError without credentials."""
    return _cached(("obstore", config, concurrency), lambda: _new_store(config, concurrency))


def _new_store(config: S3Config, concurrency: int) -> S3Store:
    from obstore.store import S3Store

    endpoint = bucket_endpoint(config)
    options: dict[str, Any] = {
        "endpoint": endpoint,
        "virtual_hosted_style_request": not config.path_style,
        "region": effective_region(config),
    }
    provider = None
    if config.unsigned:
        options["skip_signature"] = True
    elif config.has_keys:
        assert config.secret_access_key is not None
        options["access_key_id"] = config.access_key_id
        options["secret_access_key"] = config.secret_access_key.get_secret_value()
        if config.session_token:
            options["session_token"] = config.session_token.get_secret_value()
    else:
        provider = _chain_credentials(config)
    return S3Store(
        config.bucket,
        client_options=_client_options(config, endpoint, concurrency),
        retry_config={
            "max_retries": max(0, config.max_attempts - 1),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "base": 2},
            "retry_timeout": timedelta(minutes=3),
        },
        credential_provider=provider,
        **options,
    )


def _client_options(config: S3Config, endpoint: str, concurrency: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "allow_http": endpoint.startswith("http://"),
        "connect_timeout": timedelta(seconds=CONNECT_TIMEOUT_S),
        "timeout": timedelta(seconds=REQUEST_TIMEOUT_S),
        # Kept open between calls: every folder of a run reuses them.
        "pool_max_idle_per_host": str(max(1, concurrency)),
        "pool_idle_timeout": timedelta(seconds=50),
    }
    if config.verify is False:
        options["allow_invalid_certificates"] = True
    if config.ca_bundle:
        options["root_certificate"] = _read_ca_bundle(config.ca_bundle)
    proxy = config.proxies.get("https_proxy" if endpoint.startswith("https") else "http_proxy")
    if proxy:
        options["proxy_url"] = proxy
        if config.proxies.get("no_proxy"):
            options["proxy_excludes"] = config.proxies["no_proxy"]
    return options


def _read_ca_bundle(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the CA bundle {path!r} (check AWS_CA_BUNDLE): {exc}"
        raise StorageError(message) from None


def _chain_credentials(config: S3Config) -> Any:
    """obstore's provider over botocore's default chain (refreshing temporary credentials)."""
    from botocore.exceptions import BotoCoreError
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        return Boto3CredentialProvider(_session(config.profile_name))
    except ValueError:  # the chain found nothing
        raise StorageError(no_credentials_message(config)) from None
    except BotoCoreError as exc:  # a profile that does not exist, a broken config file
        raise StorageError(f"cannot load AWS credentials (check AWS_PROFILE): {exc}") from None


def _session(profile_name: str | None) -> Any:
    import boto3

    return boto3.session.Session(profile_name=profile_name)


def _shared_session(profile_name: str | None) -> Any:
    """One session per profile: its loaded service models serve every client made from it."""
    return _cached(("session", profile_name), lambda: _session(profile_name))


_cache: dict[tuple[Any, ...], Any] = {}
_cache_lock = threading.RLock()  # a client is made with a session from the cache


def _cached(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    with _cache_lock:
        if key not in _cache:
            _cache[key] = make()
        return _cache[key]


def effective_region(config: S3Config) -> str:
    """The configured region, else the profile's, else us-east-1."""
    if config.region:
        return config.region
    return _profile_region(config.profile_name) or DEFAULT_REGION


@lru_cache(maxsize=8)
def _profile_region(profile_name: str | None) -> str | None:
    try:
        return _session(profile_name).region_name
    except Exception:  # the profile is reported when credentials are resolved
        return None


def bucket_endpoint(config: S3Config) -> str:
    """The URL requests go to: the configured endpoint, or AWS's for the region (in its
    partition: amazonaws.com.cn in China), with the bucket in the host name when requests
    are virtual-hosted."""
    if config.endpoint_url:
        return config.endpoint_url.rstrip("/")
    url = aws_endpoint(effective_region(config), config.use_ssl)
    if config.path_style:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{config.bucket}.{parts.netloc}"


@lru_cache(maxsize=32)
def aws_endpoint(region: str, use_ssl: bool = True) -> str:
    """AWS S3's regional endpoint as botocore resolves it (partitions included)."""
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3",
        region_name=region,
        use_ssl=use_ssl,
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(s3={"addressing_style": "path"}),
    )
    return client.meta.endpoint_url.rstrip("/")


# -- botocore --------------------------------------------------------------------------------


def botocore_client(config: S3Config) -> Any:
    """A botocore S3 client with the same endpoint, credentials, TLS and proxy settings, and
    botocore's standard retry mode (backoff with jitter) for `max_attempts` attempts; one per
    process and configuration (building one loads S3's service model: a fraction of a second)."""
    return _cached(("botocore", config), lambda: _new_client(config))


def _new_client(config: S3Config) -> Any:
    from botocore import UNSIGNED
    from botocore.config import Config

    session = _shared_session(None if config.has_keys else config.profile_name)
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    token = config.session_token.get_secret_value() if config.session_token else None
    verify: bool | str | None = config.verify
    if config.ca_bundle and verify is not False:
        verify = config.ca_bundle
    # Proxies: botocore reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment itself.
    client = session.client(
        "s3",
        region_name=effective_region(config),
        endpoint_url=config.endpoint_url or None,
        use_ssl=config.use_ssl,
        verify=verify,
        aws_access_key_id=config.access_key_id if config.has_keys else None,
        aws_secret_access_key=secret if config.has_keys else None,
        aws_session_token=token if config.has_keys else None,
        config=Config(
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if config.path_style else "virtual"},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=REQUEST_TIMEOUT_S,
            signature_version=UNSIGNED if config.unsigned else None,
        ),
    )
    return client
