"""Notification targets: where a message goes, as settings and task.yaml name them.

A target is an Apprise URL (`mailto://…`, `ntfy://…`, `json://…`, …) or a signed webhook,
`webhook+https://host/path?secret=…` (JSON POSTed to `https://host/path`, signed with the
secret; see `webhook.py`). Settings and the targets file may put tags before a URL,
`ops,pager=mailto://…`: a task picks tagged targets with `notify: {tags: [pager]}`, while
untagged ones hear of every task that names no tags (as Apprise's own tags work).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tasse.errors import NotifyTargetError

#: the scheme prefix of a signed webhook target
WEBHOOK = "webhook+"
#: query keys whose values are secrets in a webhook URL (masked wherever shown)
_SECRET_KEYS = frozenset({"secret", "token", "key", "password", "pass", "apikey"})
MASK = "****"


@dataclass(frozen=True)
class Target:
    """One place messages go."""

    url: str
    tags: frozenset[str] = field(default_factory=frozenset)

    @cached_property
    def key(self) -> str:
        """A short stable name for the target that gives nothing of its URL away."""
        # cached: a burst of 1,000 failures asks it several times per row, on the loop
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def is_webhook(self) -> bool:
        """A signed webhook rather than an Apprise URL."""
        return self.url.startswith(WEBHOOK)


def parse_entry(entry: str, where: str) -> Target:
    """`[tag,tag=]URL` as a Target (NotifyTargetError, naming `where`, if it is not one)."""
    text = entry.strip()
    scheme_at = text.find("://")
    if scheme_at < 1:
        raise NotifyTargetError(where, "is not a URL (like mailto://… or webhook+https://…)")
    tags: frozenset[str] = frozenset()
    head = text[:scheme_at]
    if "=" in head:  # tags come before the scheme; a URL's own `=` come after it
        named, _, scheme = head.rpartition("=")
        tags = frozenset(tag.strip() for tag in named.split(",") if tag.strip())
        text = scheme + text[scheme_at:]
    return Target(text, tags)


def read_targets(entries: Iterable[str], file: Path | None) -> list[Target]:
    """The server's targets: those of the settings, then those of the targets file."""
    targets = [parse_entry(entry, "TASSE_NOTIFY") for entry in entries]
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise NotifyTargetError(str(file), f"cannot be read: {error}") from None
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                targets.append(parse_entry(line, f"{file}:{number}"))
    unique = {target.key: target for target in targets}  # named twice: one target
    return list(unique.values())


def webhook_parts(url: str) -> tuple[str, str | None]:
    """A webhook target's address to POST to (its secret taken out) and its secret."""
    parts = urlsplit(url.removeprefix(WEBHOOK))
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret = next((value for key, value in query if key == "secret"), None)
    kept = urlencode([(key, value) for key, value in query if key != "secret"])
    return urlunsplit(parts._replace(query=kept)), secret


def masked_webhook(url: str) -> str:
    """A webhook target as it may be shown: password and secret-like values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}" if ":" in user else f"{MASK}@{host}"
    query = [
        (key, MASK if key.lower() in _SECRET_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
