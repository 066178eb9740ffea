"""The code location's root: the domains' definitions, merged."""

import dagster as dg

from media_import.defs.automation.definitions import build_defs as automation_defs
from media_import.defs.importing.definitions import build_defs as importing_defs
from media_import.defs.notifications.definitions import build_defs as notification_defs


def build_definitions() -> dg.Definitions:
    """Build the definitions from the current environment (tests call this after setting it)."""
    # The phases of a folder run strictly one after another, so a process per step (the default
    # multiprocess executor) would add start-up time and memory without any parallelism.
    return dg.Definitions.merge(
        importing_defs(),
        automation_defs(),
        notification_defs(),
        dg.Definitions(executor=dg.in_process_executor),
    )


defs = build_definitions()
