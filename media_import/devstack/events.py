"""S3 event notifications on the local stack: a queue, and a bucket that notifies it.

moto's server mode serves SQS on the same port as S3 and delivers the bucket's notifications to
the queue itself (without sequencers), so tests and the demo exercise the real message format.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from media_import.devstack.s3server import DEFAULT_REGION, s3_client

# The event types the importer follows (media_import.core.s3_events).
NOTIFIED_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


def sqs_client(
    endpoint_url: str,
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
) -> Any:
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


def make_queue(
    endpoint_url: str,
    name: str,
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
) -> str:
    """Create the queue `name` (or find it if it exists); returns its URL."""
    client = sqs_client(endpoint_url, region, access_key, secret_key)
    return str(client.create_queue(QueueName=name)["QueueUrl"])


def notify_bucket_to_queue(
    endpoint_url: str,
    bucket: str,
    queue_url: str,
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
) -> None:
    """Send the bucket's object created and removed events to the queue, replacing the bucket's
    notification configuration. S3 then sends an s3:TestEvent message to the queue."""
    sqs = sqs_client(endpoint_url, region, access_key, secret_key)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3 = s3_client(endpoint_url, region, access_key, secret_key)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "media-import-events",
                    "QueueArn": attributes["Attributes"]["QueueArn"],
                    "Events": list(NOTIFIED_EVENTS),
                }
            ]
        },
    )
