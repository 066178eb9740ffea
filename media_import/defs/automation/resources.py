"""The S3 event queue as a typed resource (SQS, or any endpoint speaking its API)."""

from __future__ import annotations

from typing import Any

from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from media_import.core.event_queue import EventQueue, QueueConfig
from media_import.defs.env import env_var_if_set
from media_import.settings import REGION_VARS

QUEUE_URL_VAR = "S3_EVENTS_QUEUE_URL"
QUEUE_ENDPOINT_VAR = "SQS_ENDPOINT_URL"


class S3EventQueue(ResourceWithS3Configuration):
    """The SQS queue the bucket's event notifications (ObjectCreated:*, ObjectRemoved:*) go to.
    Unset: the event sensor stays idle and the reconciliation sensor alone keeps up.

    Its connection fields are dagster-aws's, as the bucket's resource's (region_name,
    profile_name, aws_access_key_id, ...), fed from the same environment names; endpoint_url
    is the queue's endpoint (SQS_ENDPOINT_URL)."""

    queue_url: str | None = Field(
        default=None, description="Queue URL (S3_EVENTS_QUEUE_URL); unset disables events."
    )
    ca_bundle: str | None = Field(
        default=None, description="PEM file of extra CA certificates to trust (AWS_CA_BUNDLE)."
    )
    max_messages_per_tick: int = Field(
        default=1000, description="Messages received per sensor tick, at most."
    )

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, ("**********" if value and name in _SECRET_FIELDS else value)

    @property
    def enabled(self) -> bool:
        return bool(self.queue_url)

    def open(self) -> EventQueue:
        assert self.queue_url, "S3_EVENTS_QUEUE_URL is not set"
        return EventQueue(
            QueueConfig(
                queue_url=self.queue_url,
                endpoint_url=self.endpoint_url,
                region=self.region_name,
                access_key_id=self.aws_access_key_id,
                secret_access_key=self.aws_secret_access_key,  # type: ignore[arg-type]
                session_token=self.aws_session_token,  # type: ignore[arg-type]
                profile_name=self.profile_name,
                verify=self.ca_bundle
                if self.ca_bundle and self.verify is not False
                else self.verify,
            )
        )


_SECRET_FIELDS = frozenset({"aws_secret_access_key", "aws_session_token"})


def event_queue_from_env() -> S3EventQueue:
    return S3EventQueue(
        queue_url=env_var_if_set(QUEUE_URL_VAR),
        endpoint_url=env_var_if_set(QUEUE_ENDPOINT_VAR),
        region_name=env_var_if_set(*REGION_VARS),
        profile_name=env_var_if_set("AWS_PROFILE"),
        aws_access_key_id=env_var_if_set("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env_var_if_set("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env_var_if_set("AWS_SESSION_TOKEN"),
        ca_bundle=env_var_if_set("AWS_CA_BUNDLE"),
    )
