"""The sensors tick every MEDIA_IMPORT_SENSOR_INTERVAL seconds, not one daemon look later."""

from __future__ import annotations

import pytest

from media_import.defs.automation.sensors import build_event_sensor, build_reconciliation_sensor


@pytest.mark.parametrize(("interval", "minimum"), [("5", 3), ("30", 28), ("1", 1)])
def test_the_minimum_interval_leaves_room_for_the_daemons_jitter(monkeypatch, interval, minimum):
    monkeypatch.setenv("MEDIA_IMPORT_SENSOR_INTERVAL", interval)
    for sensor in (build_reconciliation_sensor(), build_event_sensor()):
        assert sensor.minimum_interval_seconds == minimum
