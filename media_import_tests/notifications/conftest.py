"""Notification fixtures: a real SMTP server on localhost that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SENDER = "Media Import <media-import@archive.example>"
RECIPIENTS = ("ops@archive.example", "curator@archive.example")
UI_URL = "http://dagster.archive.example:3000/"
SMTP_USER, SMTP_PASSWORD = "notifier", "s3cret pass"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content().replace("\r\n", "\n")  # CRLF on the wire


@dataclass
class Mailbox:
    """The server's address, and every message it accepted (and the logins it saw)."""

    host: str
    port: int = 0
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd replies 535


def free_port() -> int:
    # aiosmtpd's Controller connects to its own port to know it is up, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(mailbox: Mailbox, **smtp_options: Any) -> Controller:
    for _ in range(5):  # another process may take the probed port before we bind it
        mailbox.port = free_port()
        controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port, **smtp_options)
        try:
            controller.start()
            return controller
        except (OSError, RuntimeError):
            continue
    raise RuntimeError("no free port for the test SMTP server")


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A plain SMTP server (no TLS, no login), like a local relay."""
    mailbox = Mailbox("127.0.0.1")
    controller = _serve(mailbox)
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[Mailbox]:
    """An SMTP server that requires a login (allowed without TLS: there is no certificate)."""
    mailbox = Mailbox("127.0.0.1")
    controller = _serve(
        mailbox,
        authenticator=mailbox.authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch, smtp_server: Mailbox) -> Mailbox:
    """Notifications on, pointed at `smtp_server`; returns its mailbox."""
    for name, value in {
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "NOTIFY_FROM": SENDER,
        "NOTIFY_TO": ", ".join(RECIPIENTS),
        "DAGSTER_UI_URL": UI_URL,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SMTP_USER", "SMTP_PASSWORD", "SMTP_STARTTLS", "SMTP_SSL", "NOTIFY_SUMMARY_HOUR"):
        monkeypatch.delenv(name, raising=False)
    return smtp_server


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def run_import(instance: dg.DagsterInstance, folder_key: str) -> dg.DagsterRun:
    """Run the project's real import job for one folder, with the environment as it is now."""
    from media_import.definitions import build_definitions

    if folder_key not in instance.get_dynamic_partitions("folders"):
        instance.add_dynamic_partitions("folders", [folder_key])
    result = (
        build_definitions()
        .resolve_job_def("import_folder")
        .execute_in_process(instance=instance, partition_key=folder_key, raise_on_error=False)
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def failure_event(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterEvent:
    (record,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    event = record.event_log_entry.dagster_event
    assert event is not None
    return event
