"""RemoteConfig: URLs, the fields each scheme needs, and secrets that never show; a server that
accepts connections but never answers is unreachable within the timeout."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from media_import.storage import RemoteConfig, RemoteUnreachable, is_transient, open_remote

SECRET = "pw-Zq8#never-printed"
PIN = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def test_url_forms() -> None:
    sftp = RemoteConfig.from_url(
        "sftp://media@transfer.example.org:2222/in/box", password=SECRET, host_key=PIN
    )
    assert (sftp.scheme, sftp.host, sftp.effective_port) == ("sftp", "transfer.example.org", 2222)
    assert (sftp.username, sftp.directory) == ("media", "/in/box")
    assert sftp.url == "sftp://media@transfer.example.org:2222/in/box"

    ftp = RemoteConfig.from_url("ftp://archive%40cp@ftp.example.org", password=SECRET)
    assert (ftp.username, ftp.effective_port, ftp.directory) == ("archive@cp", 21, "")
    assert ftp.url == "ftp://archive%40cp@ftp.example.org:21"

    ftps = RemoteConfig.from_url("ftps://u@[::1]/x", password=SECRET)
    assert (ftps.host, ftps.effective_port) == ("::1", 21)
    assert ftps.url == "ftps://u@[::1]:21/x"


def test_fields_may_override_or_complete_the_url() -> None:
    config = RemoteConfig.from_url(
        "sftp://host.example/", username="media", password=SECRET, host_key=PIN
    )
    assert config.username == "media"


@pytest.mark.parametrize("password", [SECRET, "Pw9x/Qz7k", "Pw9x?Qz7k", "Pw9x:Qz7k"])
def test_a_password_in_the_url_is_refused_without_repeating_it(password: str) -> None:
    with pytest.raises(ValueError) as error:
        RemoteConfig.from_url(f"ftp://media:{password}@ftp.example.org:21/in")
    message = str(error.value)
    assert "pass it as password" in message
    # Characters that end a URL's host part must not split the password into a message.
    assert "Pw9x" not in message and "Qz7k" not in message and "Zq8" not in message


@pytest.mark.parametrize(
    ("url", "fields", "complaint"),
    [
        ("http://h/", {"password": SECRET}, "sftp, ftp or ftps"),
        ("sftp://u@h/", {"host_key": PIN}, "password or a private key"),
        ("ftp://u@h/", {}, "needs a password"),
        ("ftp://u@h/", {"password": SECRET, "private_key": "k"}, "no key login"),
        ("ftp://u@h/", {"password": SECRET, "host_key": PIN}, "host keys are for sftp"),
        ("ftp://u@h/", {"password": SECRET, "ca_file": "ca.pem"}, "ca_file is for ftps"),
        ("sftp://u@h/", {"password": SECRET, "host_key": PIN, "known_hosts": "kh"}, "not both"),
        ("sftp://u@h/", {"password": SECRET, "ca_file": "ca.pem"}, "pins the host key"),
        ("sftp://h/", {"password": SECRET, "host_key": PIN}, "username"),
        ("sftp://u@h:0/", {"password": SECRET, "host_key": PIN}, "port"),
    ],
)
def test_each_scheme_gets_the_fields_it_needs(url: str, fields: dict, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as error:
        RemoteConfig.from_url(url, **fields)
    assert SECRET not in str(error.value)


def test_secrets_never_show() -> None:
    config = RemoteConfig.from_url(
        "sftp://media@h/", password=SECRET, private_key=SECRET + "key", host_key=PIN
    )
    for text in (repr(config), str(config), config.url, str(config.model_dump())):
        assert SECRET not in text
    assert config.password is not None and config.password.get_secret_value() == SECRET


@pytest.mark.parametrize(
    "fields",
    [
        {"port": 70000},
        {"private_key": "k"},  # refused by the model's own check, which sees every field
        {"timeout_seconds": -1},
    ],
)
def test_validation_errors_do_not_print_the_password(fields: dict) -> None:
    with pytest.raises(ValidationError) as error:
        RemoteConfig(scheme="ftp", host="h", username="u", password=SECRET, **fields)
    assert SECRET not in str(error.value)
    assert SECRET[:6] not in str(error.value)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["sftp", "ftp"])
def test_a_server_that_never_answers_is_unreachable_in_time(
    silent_listener: int, scheme: str
) -> None:
    config = RemoteConfig.from_url(
        f"{scheme}://media@127.0.0.1:{silent_listener}/",
        password=SECRET,
        timeout_seconds=0.5,
        connect_attempts=1,
        **({"host_key": PIN} if scheme == "sftp" else {}),
    )
    with pytest.raises(RemoteUnreachable) as error:
        open_remote(config)
    assert "no answer within 0.5 s" in str(error.value)
    assert is_transient(error.value)
