"""SFTP host key pinning: the keys or fingerprints a server must present, and what it did.

A pin is one or more lines, each a public key (`ssh-ed25519 AAAA...`, as `ssh-keyscan` prints
it, with or without its leading host field) or a SHA256 fingerprint (`SHA256:...`, as
`ssh-keygen -lf` prints it). A known_hosts file is read with asyncssh, so hashed host names,
`[host]:port` entries and `@cert-authority`/`@revoked` markers work as in OpenSSH.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

FINGERPRINT_PREFIX = "SHA256:"


@dataclass(frozen=True)
class HostKeyPins:
    """Public keys and SHA256 fingerprints that are accepted as the server's host key."""

    keys: tuple[asyncssh.SSHKey, ...] = ()
    fingerprints: frozenset[str] = frozenset()

    def accepts(self, key: asyncssh.SSHKey) -> bool:
        return key in self.keys or fingerprint(key) in self.fingerprints

    def describe(self) -> str:
        named = [describe_key(k) for k in self.keys] + sorted(self.fingerprints)
        return ", ".join(named) if named else "no key"


def parse_pins(text: str) -> HostKeyPins:
    """Pins from key lines and fingerprints, one a line; ValueError names a bad line."""
    keys: list[asyncssh.SSHKey] = []
    fingerprints: set[str] = set()
    lines = [line.strip() for line in text.splitlines()]
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        if line.startswith(FINGERPRINT_PREFIX):
            fingerprints.add(line.split()[0].rstrip("="))
            continue
        try:
            keys.append(_import_key_line(line))
        except (asyncssh.KeyImportError, ValueError):
            raise ValueError(
                f"host key line {number} is neither a public key line "
                "('ssh-ed25519 AAAA...') nor a fingerprint ('SHA256:...')"
            ) from None
    if not keys and not fingerprints:
        raise ValueError("host key is empty: give a public key line or a SHA256 fingerprint")
    return HostKeyPins(tuple(keys), frozenset(fingerprints))


def _import_key_line(line: str) -> asyncssh.SSHKey:
    """A public key line, with or without a leading host field (`[host]:port ssh-ed25519 ...`)."""
    try:
        return asyncssh.import_public_key(line)
    except asyncssh.KeyImportError:
        parts = line.split(maxsplit=1)
        if len(parts) < 2:
            raise
        return asyncssh.import_public_key(parts[1])


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it (`SHA256:<base64>`, no padding)."""
    return key.get_fingerprint("sha256")


def describe_key(key: asyncssh.SSHKey) -> str:
    return f"{fingerprint(key)} ({key.get_algorithm()})"


def public_key_line(key: asyncssh.SSHKey) -> str:
    """`ssh-ed25519 AAAA...`: the line to pin, without a comment."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


@dataclass
class HostKeyCheck:
    """The trust asyncssh is given for one connection, and what the server presented.

    asyncssh calls `trusted` (its known_hosts callable) with the host, address and port it
    connects to; `presented` is filled by the client's `validate_host_public_key`, which asyncssh
    calls only for a key that none of the trusted keys matched.
    """

    pins: HostKeyPins | None = None
    known_hosts: Path | None = None
    expected: HostKeyPins = field(default_factory=HostKeyPins)
    presented: asyncssh.SSHKey | None = None
    listed: bool = True

    def trusted(self, host: str, addr: str, port: int | None) -> tuple[Sequence, ...]:
        if self.known_hosts is None:
            self.expected = self.pins or HostKeyPins()
            return (list(self.expected.keys), [], [])
        known = asyncssh.read_known_hosts(str(self.known_hosts))
        trusted, cas, revoked, *_ = known.match(host, addr, port)
        # An entry can match by name and by address: name each key once.
        self.expected = HostKeyPins(tuple(dict.fromkeys(trusted)))
        self.listed = bool(trusted or cas or revoked)
        return (trusted, cas, revoked)

    def accepts(self, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        return self.pins is not None and self.pins.accepts(key)

    @property
    def host_unknown(self) -> bool:
        """A known_hosts file that has no entry at all for the host."""
        return self.known_hosts is not None and not self.listed
