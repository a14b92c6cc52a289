"""Prometheus metrics: what the server counts since it started, and `/metrics`' text.

Owns `prometheus_client` (the only part that imports it). Its hooks (`Metrics.note_run`,
`note_env_build`, `note_notification`) are wired by `service` to the callbacks the other
parts already have, so runs/ and envs/ know nothing of metrics. Imports the runs' ledger
(how many fire times a record stands for) and the vocabulary. Called by `service`.
"""
