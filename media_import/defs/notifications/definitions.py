"""The notifications domain: run-failure and daily-summary e-mails, and their notifier."""

import dagster as dg

from media_import.defs.notifications.resources import notifier_from_env
from media_import.defs.notifications.sensors import daily_summary_email, email_on_run_failure


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        sensors=[email_on_run_failure, daily_summary_email],
        resources={"email_notifier": notifier_from_env()},
    )
