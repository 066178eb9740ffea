"""E-mail notifications, Dagster-free: SMTP delivery and the texts of the messages."""
