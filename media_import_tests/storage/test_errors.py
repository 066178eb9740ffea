"""Each kind of failure has its own error, whose message names what to check and never a
secret; transient ones are marked so callers can retry."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from media_import.devstack import find_free_port
from media_import.devstack.ftp_server import LocalFtpServer
from media_import.devstack.sftp_server import LocalSftpServer
from media_import.storage import (
    RemoteAuthFailed,
    RemoteCertificateError,
    RemoteConfig,
    RemoteDiskFull,
    RemoteError,
    RemoteFileNotFound,
    RemotePermissionDenied,
    RemoteUnreachable,
    is_transient,
    open_remote,
)
from media_import_tests.remote_servers import ClientKey
from media_import_tests.storage.conftest import Served

PASSWORD = "pw-Zq8#never-printed"


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    for secret in secrets:
        for text in (str(error), repr(error)):
            assert secret not in text


def test_nothing_listening_is_unreachable_after_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = find_free_port()
    config = RemoteConfig.from_url(
        f"ftp://media@127.0.0.1:{port}/in", password=PASSWORD, connect_attempts=2
    )
    with (
        caplog.at_level(logging.INFO, logger="media_import.storage"),
        pytest.raises(RemoteUnreachable) as error,
    ):
        open_remote(config)

    message = str(error.value)
    assert f"127.0.0.1:{port}" in message
    assert "check the host and port" in message
    assert is_transient(error.value)
    assert_no_secret(error.value, PASSWORD)
    assert [r for r in caplog.records if "retrying" in r.getMessage()]  # one retry, then give up


@pytest.mark.parametrize("scheme", ["sftp", "ftp"])
def test_unreachable_names_host_and_port(scheme: str) -> None:
    port = find_free_port()
    config = RemoteConfig.from_url(
        f"{scheme}://media@127.0.0.1:{port}/",
        password=PASSWORD,
        connect_attempts=1,
        **({"insecure_accept_any_host_key": True} if scheme == "sftp" else {}),
    )
    with pytest.raises(RemoteUnreachable, match=f"127.0.0.1:{port}"):
        open_remote(config)


def test_a_wrong_password_is_refused_naming_the_user(served: Served) -> None:
    config = served.remote_config(password=PASSWORD)
    with pytest.raises(RemoteAuthFailed) as error:
        open_remote(config)
    message = str(error.value)
    assert "'media'" in message and "password" in message
    assert not is_transient(error.value)
    assert_no_secret(error.value, PASSWORD, served.server.password)


def test_a_server_refusing_all_logins(served: Served) -> None:
    served.server.refuse_logins = True
    with pytest.raises(RemoteAuthFailed) as error:
        open_remote(served.config)
    assert_no_secret(error.value, served.server.password)


def test_sftp_key_login_and_a_refused_key(
    sftp_server: LocalSftpServer, sftp_client_key: ClientKey
) -> None:
    (sftp_server.root / "a.txt").write_bytes(b"a")
    by_text = sftp_server.remote_config(password=None, private_key=sftp_client_key.private_pem)
    by_file = sftp_server.remote_config(
        password=None, private_key_file=sftp_client_key.private_file
    )
    for config in (by_text, by_file):
        with open_remote(config) as remote:
            assert remote.read_bytes("a.txt", max_bytes=1) == b"a"

    sftp_server.refuse_logins = True
    with pytest.raises(RemoteAuthFailed, match="private key") as error:
        open_remote(by_text)
    assert_no_secret(error.value, sftp_client_key.private_pem.splitlines()[1])


def test_an_unreadable_private_key_is_named_without_its_contents(
    sftp_server: LocalSftpServer,
) -> None:
    config = sftp_server.remote_config(password=None, private_key="-----BEGIN garbage-----")
    with pytest.raises(RemoteAuthFailed, match="cannot be loaded") as error:
        open_remote(config)
    assert_no_secret(error.value, "garbage")


def test_writing_where_it_is_not_allowed_names_the_path(served: Served) -> None:
    (served.root / "outbox").mkdir()
    (served.root / "outbox" / "kept.xml").write_bytes(b"old")
    served.server.read_only = True
    with open_remote(served.config) as remote:
        with pytest.raises(RemotePermissionDenied) as error:
            remote.upload("outbox/new.xml", b"<x/>")
        assert "outbox/new.xml" in str(error.value)
        assert "'media'" in str(error.value)
        with pytest.raises(RemotePermissionDenied):
            remote.makedirs("outbox/2026")
        # Reads still work: the session is usable after a refusal.
        assert remote.read_bytes("outbox/kept.xml", max_bytes=10) == b"old"
    assert sorted(os.listdir(served.root / "outbox")) == ["kept.xml"]


def test_a_full_disk_names_the_path(served: Served) -> None:
    served.server.free_bytes = 1000
    with open_remote(served.config) as remote:
        with pytest.raises(RemoteDiskFull) as error:
            remote.upload("day.csv", b"x" * 300_000)
        message = str(error.value)
        assert "day.csv" in message and "free space" in message
        assert not is_transient(error.value)
        assert_no_secret(error.value, served.server.password)
        served.server.free_bytes = None  # space freed: the same session writes again
        remote.upload("day.csv", b"x" * 300_000)
    assert os.listdir(served.root) == ["day.csv"]


def test_writing_into_a_missing_directory_says_so(served: Served) -> None:
    with (
        open_remote(served.config) as remote,
        pytest.raises(RemoteFileNotFound, match=r"no-such-dir/a\.xml"),
    ):
        remote.upload("no-such-dir/a.xml", b"<x/>")


def test_a_configured_directory_that_does_not_exist(served: Served) -> None:
    with pytest.raises(RemoteError, match="missing"):
        open_remote(served.remote_config(directory="/missing"))


def test_ftps_refuses_a_certificate_it_does_not_trust(ftps_server: LocalFtpServer) -> None:
    config = ftps_server.remote_config(ca_file=None)
    with pytest.raises(RemoteCertificateError, match="ca_file") as error:
        open_remote(config)
    assert not is_transient(error.value)


def test_messages_and_reprs_of_sessions_and_configs_hold_no_password(served: Served) -> None:
    with open_remote(served.config) as remote:
        texts = [repr(remote), str(remote), repr(served.config), str(served.config)]
        texts.append(served.config.url)
        texts.append(str(served.config.model_dump()))
    for text in texts:
        assert served.server.password not in text


def test_private_key_files_are_read_when_connecting_not_before(
    sftp_server: LocalSftpServer, tmp_path: Path
) -> None:
    config = sftp_server.remote_config(password=None, private_key_file=tmp_path / "absent")
    with pytest.raises(RemoteAuthFailed, match="absent"):
        open_remote(config)
