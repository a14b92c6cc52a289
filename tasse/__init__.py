"""Tasse: a folder is a task. Schedules, per-task environments, run history and an HTTP API."""

__version__ = "0.1.0"
