"""send_email against a real SMTP server on localhost."""

from __future__ import annotations

import smtplib

import pytest

from media_import.notify.email import SmtpSettings, send_email
from media_import_tests.notifications.conftest import (
    RECIPIENTS,
    SENDER,
    SMTP_PASSWORD,
    SMTP_USER,
    Mailbox,
)


def _settings(server: Mailbox, **changes: object) -> SmtpSettings:
    options: dict = {
        "host": server.host,
        "port": server.port,
        "sender": SENDER,
        "recipients": RECIPIENTS,
        **changes,
    }
    return SmtpSettings(**options)


def test_sends_one_plain_text_message_to_every_recipient(smtp_server):
    send_email(_settings(smtp_server), "Città: 3 runs", "First line\nSecond line — ok\n")

    (received,) = smtp_server.received
    assert received.mail_from == "media-import@archive.example"
    assert received.rcpt_tos == list(RECIPIENTS)
    assert received.subject == "Città: 3 runs"
    assert received.message["From"] == SENDER
    assert received.message["To"] == ", ".join(RECIPIENTS)
    assert received.message["Message-ID"].endswith("@archive.example>")
    assert received.message["Date"]
    assert received.message.get_content_type() == "text/plain"
    assert received.body == "First line\nSecond line — ok\n"


# The test server has no certificate, so it accepts a login without TLS, and warns about it.
NO_TLS_WARNING = "ignore:Requiring AUTH while not requiring TLS"


@pytest.mark.filterwarnings(NO_TLS_WARNING)
def test_logs_in_when_a_user_is_set(smtp_auth_server):
    settings = _settings(smtp_auth_server, username=SMTP_USER, password=SMTP_PASSWORD)
    send_email(settings, "subject", "body")

    assert smtp_auth_server.logins == [SMTP_USER]
    assert len(smtp_auth_server.received) == 1


@pytest.mark.filterwarnings(NO_TLS_WARNING)
def test_a_wrong_password_raises_and_sends_nothing(smtp_auth_server):
    settings = _settings(smtp_auth_server, username=SMTP_USER, password="wrong")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_email(settings, "subject", "body")
    assert smtp_auth_server.received == []


def test_starttls_against_a_server_without_it_raises(smtp_server):
    with pytest.raises(smtplib.SMTPNotSupportedError):
        send_email(_settings(smtp_server, starttls=True), "subject", "body")
    assert smtp_server.received == []


def test_settings_refuse_no_recipients_and_both_tls_modes():
    with pytest.raises(ValueError, match="NOTIFY_TO"):
        SmtpSettings(host="smtp", sender=SENDER, recipients=())
    with pytest.raises(ValueError, match="SMTP_STARTTLS and SMTP_SSL"):
        SmtpSettings(host="smtp", sender=SENDER, recipients=RECIPIENTS, starttls=True, ssl=True)


def test_settings_never_show_the_password():
    settings = SmtpSettings(
        host="smtp", sender=SENDER, recipients=RECIPIENTS, username="u", password=SMTP_PASSWORD
    )
    assert SMTP_PASSWORD not in repr(settings)
    assert SMTP_PASSWORD not in str(settings)
