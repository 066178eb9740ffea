"""The e-mail notifier: SMTP settings, recipients and the UI's address, from the environment.

As with the importing resources, values set in the environment are EnvVar references,
resolved when a sensor is evaluated: the SMTP password never appears in stored configuration.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from media_import.defs.env import env_var_if_set, int_env_var_if_set
from media_import.notify.daily import DEFAULT_SUMMARY_HOUR
from media_import.notify.email import SmtpSettings
from media_import.settings import split_list, truthy


class EmailNotifier(dg.ConfigurableResource):
    """Where notifications go. Without an SMTP host, notifications are off."""

    smtp_host: str | None = Field(
        default=None, description="SMTP server (SMTP_HOST); unset turns notifications off."
    )
    smtp_port: int | None = Field(
        default=None,
        description="SMTP port (SMTP_PORT); unset: 465 with SMTP_SSL, 587 with SMTP_STARTTLS, "
        "else 25.",
    )
    smtp_username: str | None = Field(
        default=None, description="Login user (SMTP_USER); unset: no login."
    )
    smtp_password: str | None = Field(default=None, description="Login password (SMTP_PASSWORD).")
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS (SMTP_STARTTLS)."
    )
    smtp_ssl: bool = Field(
        default=False, description="Connect with TLS from the start, as on port 465 (SMTP_SSL)."
    )
    sender: str | None = Field(default=None, description="From address (NOTIFY_FROM).")
    recipients: str | None = Field(
        default=None, description="Comma-separated addresses to notify (NOTIFY_TO)."
    )
    ui_url: str | None = Field(
        default=None,
        description="Base URL of the Dagster UI, for links to runs (DAGSTER_UI_URL), "
        "e.g. http://dagster.example.org:3000.",
    )
    summary_hour: int = Field(
        default=DEFAULT_SUMMARY_HOUR,
        description="Hour of the day (UTC) after which the daily summary is sent "
        "(NOTIFY_SUMMARY_HOUR).",
    )

    @property
    def enabled(self) -> bool:
        return bool((self.smtp_host or "").strip())

    def settings(self) -> SmtpSettings:
        """The SMTP settings; raises ValueError naming the variable that is missing or wrong."""
        if not self.enabled:
            raise ValueError("notifications are off: SMTP_HOST is not set")
        if not (self.sender or "").strip():
            raise ValueError("SMTP_HOST is set but NOTIFY_FROM (the sender address) is not")
        return SmtpSettings(
            host=(self.smtp_host or "").strip(),
            port=self.smtp_port or _default_port(self.smtp_ssl, self.smtp_starttls),
            sender=(self.sender or "").strip(),
            recipients=tuple(split_list(self.recipients)),
            username=self.smtp_username or None,
            password=self.smtp_password,
            starttls=self.smtp_starttls,
            ssl=self.smtp_ssl,
        )


def _default_port(use_ssl: bool, starttls: bool) -> int:
    if use_ssl:
        return 465
    return 587 if starttls else 25


def notifier_from_env() -> EmailNotifier:
    """The notifier wired to SMTP_*, NOTIFY_* and DAGSTER_UI_URL.

    Only variables set now are referenced: an EnvVar of an unset variable fails when the
    resource is resolved, and most deployments leave most of these unset.
    """
    hour = int_env_var_if_set("NOTIFY_SUMMARY_HOUR")
    return EmailNotifier(
        smtp_host=env_var_if_set("SMTP_HOST"),
        smtp_port=int_env_var_if_set("SMTP_PORT"),
        smtp_username=env_var_if_set("SMTP_USER"),
        smtp_password=env_var_if_set("SMTP_PASSWORD"),
        # Flags are read now (EnvVar has no boolean form), like ACH_DRY_RUN; they are no secret.
        smtp_starttls=truthy(os.environ.get("SMTP_STARTTLS")),
        smtp_ssl=truthy(os.environ.get("SMTP_SSL")),
        sender=env_var_if_set("NOTIFY_FROM"),
        recipients=env_var_if_set("NOTIFY_TO"),
        ui_url=env_var_if_set("DAGSTER_UI_URL"),
        # Not `hour or default`: an IntEnvVar is an int of value 0, hence falsy.
        summary_hour=DEFAULT_SUMMARY_HOUR if hour is None else hour,
    )
