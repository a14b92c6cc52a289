"""A real browser for the dashboard's tests: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work without the internet, so the tests use the
system's `chromium` (CI installs it with apt-get). Without it they skip, saying so, unless
TASSE_REQUIRE_SERVICES=1 makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_or_skip() -> str:
    """The system Chromium's path, or skip (fail in CI) without one."""
    path = shutil.which("chromium")
    if path is None:
        reason = "no `chromium` on PATH (apt-get install -y chromium)"
        if os.environ.get("TASSE_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for a test module (each test opens its own context)."""
    executable = chromium_or_skip()
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()
