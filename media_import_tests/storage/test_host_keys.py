"""SFTP host keys are pinned: no pin refuses to connect, a different key is refused and named,
the pinned key (as a line, a fingerprint or a known_hosts entry) is accepted."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncssh
import pytest

from media_import.devstack.sftp_server import LocalSftpServer
from media_import.storage import (
    HostKeyMismatch,
    HostKeyNotPinned,
    HostKeyUnknown,
    RemoteConfig,
    is_transient,
    open_remote,
)
from media_import.storage.host_keys import fingerprint, parse_pins, public_key_line


def other_key_line() -> str:
    return public_key_line(asyncssh.generate_private_key("ssh-ed25519"))


def test_without_a_pin_the_connection_is_refused_saying_how_to_pin(
    sftp_server: LocalSftpServer,
) -> None:
    config = sftp_server.remote_config(host_key=None)
    with pytest.raises(HostKeyNotPinned) as error:
        open_remote(config)
    message = str(error.value)
    assert f"ssh-keyscan -p {sftp_server.port} 127.0.0.1" in message
    assert "host_key" in message and "known_hosts" in message
    assert not is_transient(error.value)


def test_the_pinned_key_line_or_fingerprint_is_accepted(sftp_server: LocalSftpServer) -> None:
    (sftp_server.root / "a.txt").write_bytes(b"a")
    pins = [
        sftp_server.host_key_line,
        sftp_server.host_key_fingerprint,
        sftp_server.known_hosts_line,  # ssh-keyscan's form, with the host field
        f"{other_key_line()}\n{sftp_server.host_key_line}",  # one of several
    ]
    for pin in pins:
        with open_remote(sftp_server.remote_config(host_key=pin)) as remote:
            assert [e.name for e in remote.list()] == ["a.txt"]


def test_another_key_is_refused_naming_expected_and_presented(
    sftp_server: LocalSftpServer,
) -> None:
    expected = other_key_line()
    with pytest.raises(HostKeyMismatch) as error:
        open_remote(sftp_server.remote_config(host_key=expected))
    message = str(error.value)
    assert fingerprint(parse_pins(expected).keys[0]) in message
    assert sftp_server.host_key_fingerprint in message
    assert "presented" in message and "expected" in message
    assert not is_transient(error.value)


def test_a_changed_host_key_is_refused(sftp_server: LocalSftpServer) -> None:
    pinned = sftp_server.remote_config()  # the key of now
    old_fingerprint = sftp_server.host_key_fingerprint
    with open_remote(pinned):
        pass

    sftp_server.restart(new_host_key=True)

    assert sftp_server.host_key_fingerprint != old_fingerprint
    with pytest.raises(HostKeyMismatch) as error:
        open_remote(pinned)
    message = str(error.value)
    assert f"expected {old_fingerprint}" in message
    assert f"presented {sftp_server.host_key_fingerprint}" in message
    # Pinning the new key after checking it is the way back in.
    with open_remote(sftp_server.remote_config()):
        pass


def test_a_new_key_of_another_type_is_refused(sftp_server: LocalSftpServer) -> None:
    pinned = sftp_server.remote_config()
    sftp_server.restart(key_type="ecdsa-sha2-nistp256")
    with pytest.raises(HostKeyMismatch, match="no host key of the pinned type"):
        open_remote(pinned)
    with open_remote(sftp_server.remote_config()):  # the new key, pinned
        pass


def test_a_fingerprint_pin_that_does_not_match(sftp_server: LocalSftpServer) -> None:
    wrong = fingerprint(asyncssh.generate_private_key("ssh-ed25519"))
    with pytest.raises(HostKeyMismatch) as mismatch:
        open_remote(sftp_server.remote_config(host_key=wrong))
    assert f"expected {wrong}" in str(mismatch.value)


def test_known_hosts_file(sftp_server: LocalSftpServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"other.example ssh-ed25519 {other_key_line().split()[1]}\n")

    config = sftp_server.remote_config(host_key=None, known_hosts=known_hosts)
    with pytest.raises(HostKeyUnknown) as error:
        open_remote(config)
    assert str(known_hosts) in str(error.value)
    assert sftp_server.host_key_fingerprint in str(error.value)

    with known_hosts.open("a") as file:
        file.write(sftp_server.known_hosts_line + "\n")
    with open_remote(config):
        pass

    sftp_server.restart(new_host_key=True)
    with pytest.raises(HostKeyMismatch) as mismatch:
        open_remote(config)
    assert sftp_server.host_key_fingerprint in str(mismatch.value)


def test_a_missing_known_hosts_file_is_refused(
    sftp_server: LocalSftpServer, tmp_path: Path
) -> None:
    config = sftp_server.remote_config(host_key=None, known_hosts=tmp_path / "absent")
    with pytest.raises(HostKeyNotPinned, match="absent"):
        open_remote(config)


def test_insecure_mode_connects_and_says_so_loudly(
    sftp_server: LocalSftpServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = sftp_server.remote_config(host_key=None, insecure_accept_any_host_key=True)
    with caplog.at_level(logging.WARNING), open_remote(config):
        pass
    [warning] = [r for r in caplog.records if "INSECURE" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert sftp_server.host_key_fingerprint in warning.getMessage()


def test_bad_pins_are_refused_when_configuring() -> None:
    url = "sftp://media@127.0.0.1:2222/"
    with pytest.raises(ValueError, match="line 1"):
        RemoteConfig.from_url(url, password="x", host_key="not a key")
    with pytest.raises(ValueError, match="contradict"):
        RemoteConfig.from_url(
            url, password="x", host_key=other_key_line(), insecure_accept_any_host_key=True
        )
