"""Plain-text e-mail through SMTP, with STARTTLS, implicit TLS and login when configured."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("no recipients: set NOTIFY_TO (comma-separated addresses)")
        if self.starttls and self.ssl:
            raise ValueError("SMTP_STARTTLS and SMTP_SSL exclude each other: set only one")

    def __repr__(self) -> str:
        # Settings end up in log lines and tracebacks: never show the password there.
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
            f"recipients={self.recipients!r}, username={self.username!r}, "
            f"starttls={self.starttls}, ssl={self.ssl})"
        )


def compose(settings: SmtpSettings, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # Some relays reject or spam-score messages without a Message-ID of their own.
    domain = parseaddr(settings.sender)[1].rpartition("@")[2]
    message["Message-ID"] = make_msgid(domain=domain or None)
    message.set_content(text)
    return message


def send_email(settings: SmtpSettings, subject: str, text: str) -> None:
    """Send one plain-text message to all recipients; raises smtplib.SMTPException or OSError."""
    message = compose(settings, subject, text)
    with _open(settings) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.ssl:
        return smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(),
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
