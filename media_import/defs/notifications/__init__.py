"""Notifications: run failures and a daily summary, e-mailed by Dagster sensors."""
