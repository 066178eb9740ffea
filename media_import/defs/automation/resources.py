"""The S3 event queue as a typed resource (SQS, or any endpoint speaking its API)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from media_import.core.event_queue import EventQueue, QueueConfig
from media_import.settings import REGION_VARS, first_set

QUEUE_URL_VAR = "S3_EVENTS_QUEUE_URL"
QUEUE_ENDPOINT_VAR = "SQS_ENDPOINT_URL"


class S3EventQueue(dg.ConfigurableResource):
    """The SQS queue the bucket's event notifications (ObjectCreated:*, ObjectRemoved:*) go to.
    Unset: the event sensor stays idle and the reconciliation sensor alone keeps up."""

    queue_url: str | None = Field(
        default=None, description="Queue URL (S3_EVENTS_QUEUE_URL); unset disables events."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="SQS endpoint for a local or non-AWS server (SQS_ENDPOINT_URL); unset: AWS.",
    )
    region: str | None = Field(default=None, description="Region (AWS_REGION).")
    access_key_id: str | None = Field(default=None, description="Access key (AWS_ACCESS_KEY_ID).")
    secret_access_key: str | None = Field(
        default=None, description="Secret key (AWS_SECRET_ACCESS_KEY)."
    )
    max_messages_per_tick: int = Field(
        default=1000, description="Messages received per sensor tick, at most."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.queue_url)

    def open(self) -> EventQueue:
        assert self.queue_url, "S3_EVENTS_QUEUE_URL is not set"
        return EventQueue(
            QueueConfig(
                queue_url=self.queue_url,
                endpoint_url=self.endpoint_url,
                region=self.region,
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
            )
        )


def _env_or_none(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if first_set((name,)) else None


def event_queue_from_env() -> S3EventQueue:
    region = first_set(REGION_VARS)
    return S3EventQueue(
        queue_url=_env_or_none(QUEUE_URL_VAR),
        endpoint_url=_env_or_none(QUEUE_ENDPOINT_VAR),
        region=dg.EnvVar(region) if region else None,
        access_key_id=_env_or_none("AWS_ACCESS_KEY_ID"),
        secret_access_key=_env_or_none("AWS_SECRET_ACCESS_KEY"),
    )
