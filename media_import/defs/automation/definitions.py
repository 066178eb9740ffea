"""The automation domain: the bucket watchers and the event queue they read."""

import dagster as dg

from media_import.defs.automation.resources import event_queue_from_env
from media_import.defs.automation.sensors import build_event_sensor, build_reconciliation_sensor


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        sensors=[build_reconciliation_sensor(), build_event_sensor()],
        resources={"s3_events": event_queue_from_env()},
    )
