"""The SQS queue that S3 event notifications arrive on: receive, delete, check reachability.

Dagster-free. The caller receives messages, stores what they say durably, and only then
deletes them: a message that was received but not deleted comes back after its visibility
timeout, so nothing is lost if the caller dies in between (it may see a message twice).
boto3 rather than obstore (storage.py): obstore does not speak SQS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from pydantic import SecretStr

# SQS's limit per ReceiveMessage and per DeleteMessageBatch call.
SQS_BATCH_LIMIT = 10
DEFAULT_LOCAL_REGION = "us-east-1"
CONNECT_TIMEOUT_S = 5
# Longer than SQS's longest long poll (20 s), or a long poll would time out client-side.
READ_TIMEOUT_S = 30

# https://sqs.<region>.amazonaws.com/<account>/<name> (and the legacy <region>.queue... form).
_AWS_QUEUE_URL_RE = re.compile(r"^https://(?:sqs\.)?([a-z0-9-]+)\.(?:queue\.)?amazonaws\.com")


@dataclass(frozen=True)
class QueueConfig:
    """The queue and how to reach it; secrets are SecretStr (masked in the repr)."""

    queue_url: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    profile_name: str | None = None
    verify: bool | str | None = None  # False, a CA bundle's path, or None: botocore's default

    def __post_init__(self) -> None:
        for name in ("secret_access_key", "session_token"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, SecretStr(value) if value else None)


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str  # needed to delete this delivery of the message
    body: str
    receive_count: int  # how many times SQS has delivered it, this delivery included


class QueueError(RuntimeError):
    """The queue could not be reached or read; the message names the setting to check."""


class EventQueue:
    """The operations the event sensor needs on one SQS (or SQS-compatible) queue."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.client: Any = _sqs_client(config)

    def receive(
        self,
        max_messages: int = 100,
        wait_seconds: int = 0,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """Up to `max_messages` messages, by repeated calls of up to 10 (SQS's limit).

        Only the first call waits (long polling, up to `wait_seconds`): once something came,
        the rest is drained without waiting, and an answer with nothing new ends the receive.
        Short polls sample a subset of SQS's servers, so this may return fewer messages than
        are queued; the next receive gets the rest.

        A message delivered twice within one receive (possible with a short visibility timeout)
        is returned once, with its latest receipt handle: the one SQS accepts for deleting it.
        """
        received: dict[str, QueueMessage] = {}
        wait = wait_seconds
        while len(received) < max_messages:
            count = min(SQS_BATCH_LIMIT, max_messages - len(received))
            batch = self._receive_once(count, wait, visibility_timeout)
            new = [m for m in batch if m.message_id not in received]
            received.update((m.message_id, m) for m in batch)
            if not new:
                break
            wait = 0
        return list(received.values())

    def _receive_once(
        self, count: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[QueueMessage]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.config.queue_url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait_seconds,
            # AttributeNames is deprecated in favour of MessageSystemAttributeNames; both are
            # sent because SQS-compatible servers may only know the older one.
            "AttributeNames": ["ApproximateReceiveCount"],
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        response = self.client.receive_message(**kwargs)
        return [_queue_message(m) for m in response.get("Messages", [])]

    def delete(self, messages: Sequence[QueueMessage]) -> list[str]:
        """Delete the messages (batches of 10); returns the ids of those that failed to delete.

        A failed message is not lost: it comes back after its visibility timeout. Errors of a
        whole call (network, credentials) are raised, not returned.
        """
        failed: list[str] = []
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            failed.extend(self._delete_batch(messages[start : start + SQS_BATCH_LIMIT]))
        return failed

    def _delete_batch(self, messages: Sequence[QueueMessage]) -> list[str]:
        # Entry ids are positions, not message ids: a message received twice (a duplicate
        # delivery) appears twice with different receipt handles, and SQS rejects a batch
        # whose entry ids repeat.
        response = self.client.delete_message_batch(
            QueueUrl=self.config.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)
            ],
        )
        return [messages[int(f["Id"])].message_id for f in response.get("Failed", [])]

    def check_reachable(self) -> None:
        """One cheap request, turning the usual misconfigurations into a clear message."""
        try:
            self.client.get_queue_attributes(
                QueueUrl=self.config.queue_url, AttributeNames=["QueueArn"]
            )
        except Exception as exc:
            raise QueueError(describe_queue_error(self.config, exc)) from exc


def _queue_message(message: dict[str, Any]) -> QueueMessage:
    attributes = message.get("Attributes") or {}
    return QueueMessage(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message.get("Body", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )


def queue_region(config: QueueConfig) -> str | None:
    """The configured region; else the one in an AWS queue URL; else us-east-1 for a custom
    endpoint (local servers ignore it, but signing needs one). None: boto3's own lookup."""
    if config.region:
        return config.region
    match = _AWS_QUEUE_URL_RE.match(config.queue_url)
    if match:
        return match.group(1)
    return DEFAULT_LOCAL_REGION if config.endpoint_url else None


def _sqs_client(config: QueueConfig) -> Any:
    # A Session of its own: boto3's default session is not thread-safe to create clients from.
    secret, token = config.secret_access_key, config.session_token
    return boto3.session.Session(profile_name=config.profile_name).client(
        "sqs",
        endpoint_url=config.endpoint_url or None,
        region_name=queue_region(config),
        verify=config.verify,
        aws_access_key_id=config.access_key_id or None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        aws_session_token=token.get_secret_value() if token else None,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def describe_queue_error(config: QueueConfig, exc: Exception) -> str:
    text = str(exc)
    where = config.endpoint_url or "AWS SQS"
    lowered = text.lower()
    if "nonexistentqueue" in lowered or "does not exist" in lowered or "404" in lowered:
        return f"queue {config.queue_url!r} does not exist at {where} (check the queue URL)"
    if "unable to locate credentials" in lowered:
        return (
            f"no credentials for queue {config.queue_url!r} at {where} "
            "(set the queue's access key id and secret access key)"
        )
    if any(s in lowered for s in ("accessdenied", "403", "invalidclienttokenid", "signature")):
        return (
            f"access to queue {config.queue_url!r} at {where} was refused "
            "(check the queue's access key id and secret access key)"
        )
    if any(s in lowered for s in ("connect", "dns", "timed out", "connection refused")):
        return f"cannot reach the SQS endpoint {where} (check the queue endpoint URL)"
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"cannot read queue {config.queue_url!r} at {where}: {first_line}"
