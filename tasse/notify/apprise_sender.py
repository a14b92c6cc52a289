"""Apprise: every service it knows (mail, Slack, Telegram, ntfy, Matrix, Teams, …) by URL.

The only module that imports Apprise. One `Apprise` object per message: they are cheap,
and a shared one is not safe to use from several delivery threads at once.
"""

from __future__ import annotations

import logging

import apprise

from tasse.errors import DeliveryError, NotifyTargetError


def check(url: str, where: str) -> None:
    """Raise NotifyTargetError if Apprise does not know what to do with the URL."""
    if apprise.Apprise.instantiate(url) is None:
        raise NotifyTargetError(where, "is not a URL Apprise knows (see its wiki for the forms)")


def shown(url: str) -> str:
    """The URL as it may be shown: Apprise's own privacy form, which masks every secret."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return url.partition("://")[0] + "://…"  # nothing of an unreadable URL is shown
    return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]


def send(url: str, title: str, body: str, timeout: float) -> None:
    """Send one message; DeliveryError, with what Apprise logged, if it was not delivered."""
    client = apprise.Apprise()
    if not client.add(url) or not client:
        raise DeliveryError(shown(url), "is not a URL Apprise knows")
    for plugin in client:
        # Apprise's own socket timeouts: a stalled service ends one attempt, not a thread.
        plugin.socket_read_timeout = plugin.socket_connect_timeout = timeout
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
        delivered = client.notify(title=title, body=body)
    if not delivered:
        logged = captured.getvalue().strip().splitlines()
        raise DeliveryError(shown(url), logged[-1] if logged else "Apprise could not deliver it")
