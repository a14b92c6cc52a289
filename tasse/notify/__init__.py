"""Notifications: which outcomes tell whom (rules and targets), the outbox's delivery off the
loop (retries, backoff, giving up, the rate limit and its digests), and the two ways out —
Apprise URLs and signed webhooks.

It listens to recorded outcomes (`runs/`), reads task.yaml's `notify:` schema (`tasks/`) and
writes its rows through the store's writer (`store/`): it may import those parts and the
vocabulary, never `service` or `http`. Apprise is imported here only.
"""
