"""Errors of remote directories, by kind: each message names what to check, never a secret.

Callers retry `TransientRemoteError`s (the same call may succeed later); every other
`RemoteError` needs a person to change something (a setting, a key, free space).
"""

from __future__ import annotations


class RemoteError(Exception):
    """A remote directory operation failed; `str(error)` says what to check."""

    transient = False


class TransientRemoteError(RemoteError):
    """The server could not be reached or the connection broke: retrying may succeed."""

    transient = True


class RemoteUnreachable(TransientRemoteError):
    """No connection to the host and port (refused, timed out, name not resolved)."""


class RemoteConnectionLost(TransientRemoteError):
    """An open connection broke or stopped answering during an operation."""


class RemoteAuthFailed(RemoteError):
    """The server refused the user's password or key."""


class HostKeyError(RemoteError):
    """The SFTP server's host key is not the pinned one, or none is pinned."""


class HostKeyNotPinned(HostKeyError):
    """No host key is configured, so the server cannot be authenticated."""


class HostKeyUnknown(HostKeyError):
    """The known_hosts file has no key for this host."""


class HostKeyMismatch(HostKeyError):
    """The server presented a key other than the pinned one(s)."""


class RemoteCertificateError(RemoteError):
    """The FTPS server's TLS certificate is not trusted (or not for this host)."""


class RemotePermissionDenied(RemoteError):
    """The user may not read, write or create the path."""


class RemoteDiskFull(RemoteError):
    """The server has no space (or quota) left for a write."""


class RemoteFileNotFound(RemoteError):
    """The path does not exist (any more)."""


class RemoteFileTooLarge(RemoteError):
    """A bounded read found more bytes than allowed."""


class RemoteOperationFailed(RemoteError):
    """The server refused an operation for another reason, given in its words."""


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying as they are."""
    return isinstance(error, RemoteError) and error.transient
