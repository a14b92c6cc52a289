"""A running Tasse whose notifications go to a real webhook receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasse.service import Tasse
from tasse.settings import Settings
from tests.notify.receivers import Mailbox, Webhook

PUBLIC_URL = "https://tasse.example.org"


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    receiver = Mailbox().start()
    yield receiver
    receiver.stop()


def notify_settings(data_dir: Path, *targets: str, **more: Any) -> Settings:
    """Settings for a test: its targets, quick retries, no rate limit unless asked."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "kill_grace": 1.0,
        "debounce": 0.05,
        "notify": list(targets),
        "public_url": PUBLIC_URL,
        "notify_retry_first": 0.2,
        "notify_retry_max": 0.5,
        "notify_rate_window": 0,
        "notify_check_interval": 0.1,
    }
    return Settings(**(values | more), _env_file=None)


@pytest.fixture
async def notified(data_dir: Path, hook: Webhook) -> AsyncIterator[Tasse]:
    """A started Tasse with the webhook receiver as its one global target."""
    service = Tasse(notify_settings(data_dir, hook.target))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
