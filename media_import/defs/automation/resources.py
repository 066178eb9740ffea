"""The S3 event queue as a typed resource (SQS, or any endpoint speaking its API)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from media_import.core.event_queue import EventQueue, QueueConfig
from media_import.defs.env import env_var_if_set
from media_import.settings import REGION_VARS

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
    session_token: str | None = Field(
        default=None, description="Session token of temporary credentials (AWS_SESSION_TOKEN)."
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
                session_token=self.session_token,
            )
        )


def event_queue_from_env() -> S3EventQueue:
    return S3EventQueue(
        queue_url=env_var_if_set(QUEUE_URL_VAR),
        endpoint_url=env_var_if_set(QUEUE_ENDPOINT_VAR),
        region=env_var_if_set(*REGION_VARS),
        access_key_id=env_var_if_set("AWS_ACCESS_KEY_ID"),
        secret_access_key=env_var_if_set("AWS_SECRET_ACCESS_KEY"),
        session_token=env_var_if_set("AWS_SESSION_TOKEN"),
    )
