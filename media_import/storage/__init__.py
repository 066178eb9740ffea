"""Transports to the outside world, free of Dagster: remote directories over SFTP, FTP and FTPS.

config = RemoteConfig.from_url("sftp://media@transfer.example.org:22/incoming",
                               password=..., host_key="ssh-ed25519 AAAA...")
with open_remote(config) as remote:
    for entry in remote.list():
        ...
    remote.upload("out/report.xml", xml_bytes)  # atomic for readers
"""

from media_import.storage.errors import (
    HostKeyError,
    HostKeyMismatch,
    HostKeyNotPinned,
    HostKeyUnknown,
    RemoteAuthFailed,
    RemoteCertificateError,
    RemoteConnectionLost,
    RemoteDiskFull,
    RemoteError,
    RemoteFileNotFound,
    RemoteFileTooLarge,
    RemoteOperationFailed,
    RemotePermissionDenied,
    RemoteUnreachable,
    TransientRemoteError,
    is_transient,
)
from media_import.storage.remote import (
    RemoteConfig,
    RemoteDirectory,
    RemoteEntry,
    Transfer,
    is_temporary_name,
    open_remote,
)

__all__ = [
    "HostKeyError",
    "HostKeyMismatch",
    "HostKeyNotPinned",
    "HostKeyUnknown",
    "RemoteAuthFailed",
    "RemoteCertificateError",
    "RemoteConfig",
    "RemoteConnectionLost",
    "RemoteDirectory",
    "RemoteDiskFull",
    "RemoteEntry",
    "RemoteError",
    "RemoteFileNotFound",
    "RemoteFileTooLarge",
    "RemoteOperationFailed",
    "RemotePermissionDenied",
    "RemoteUnreachable",
    "Transfer",
    "TransientRemoteError",
    "is_temporary_name",
    "is_transient",
    "open_remote",
]
