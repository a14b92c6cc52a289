"""The dashboard walked as a person walks it, in a real Chromium against a real server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.http.pages.browser import browser
from tests.http.test_api import Server, wait_until

__all__ = ["browser"]

pytestmark = pytest.mark.slow
#: what sticks out past the right edge, innermost first
WIDEST = """() => [...document.querySelectorAll('main *')]
    .filter(e => e.scrollWidth > e.clientWidth && getComputedStyle(e).overflowX === 'visible')
    .slice(0, 5).map(e => `${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 40)}`)"""
HOURLY = "scheduler: {trigger: interval, seconds: 3600}\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "data" / "tasks").mkdir(parents=True)
    running = Server(tmp_path / "data")
    running.task(
        "greeter",
        HOURLY,
        """
        import os, time
        print("hello", os.environ.get("TASSE_PARAM_WHO", "nobody"), flush=True)
        for n in range(1, 6):
            time.sleep(0.4)
            print("line", n, flush=True)
        """,
    )
    running.task("sleeper", HOURLY, 'import time\nprint("started", flush=True)\ntime.sleep(60)\n')
    running.task("ticker", "scheduler: {trigger: interval, seconds: 1}\n", 'print("tick")\n')
    running.task("broken", "scheduler: {trigger: interval, seconds: -5}\n")
    running.start()
    wait_until(lambda: len(running.http.get("/tasks").json()) == 4)
    yield running
    if running.process is not None and running.process.poll() is None:
        code, output = running.stop()
        assert code == 0, output
    running.http.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=str(server.http.base_url))
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def status_pill(page: Page) -> Any:
    return page.locator("[data-run-status] .pill")


def test_find_a_task_by_search_run_it_with_params_and_watch_its_log_live(page: Page) -> None:
    page.goto("/")
    expect(page.locator("tbody tr")).to_have_count(4)
    page.get_by_label("Search").fill("gree")  # the script applies the filter as one types
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr th a")).to_have_text("greeter")
    page.locator("tbody tr th a").click()

    expect(page.locator("h1")).to_contain_text("greeter")
    page.get_by_label("Parameters").fill("WHO=world")
    page.get_by_role("button", name="Run greeter now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d{8}-"))

    log = page.locator("pre[data-log]")
    # Live: lines appear while the run is still running, without a reload.
    expect(log).to_contain_text("hello world")
    expect(log).to_contain_text("line 2")
    assert "line 5" not in log.inner_text()
    expect(status_pill(page)).to_have_text("running")
    expect(log).to_contain_text("line 5")
    expect(status_pill(page)).to_have_text("succeeded")

    first_run = page.url
    page.get_by_role("button", name="Run again with the same params").click()
    expect(page).not_to_have_url(first_run)
    expect(page.locator("pre[data-log]")).to_contain_text("hello world")


def test_cancel_a_long_run(page: Page) -> None:
    page.goto("/tasks/sleeper")
    page.get_by_role("button", name="Run sleeper now").click()
    expect(page.locator("pre[data-log]")).to_contain_text("started")
    page.get_by_role("button", name="Cancel").click()
    expect(status_pill(page)).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)


def test_pause_and_resume_a_task_and_see_the_paused_skip(page: Page, server: Server) -> None:
    page.goto("/tasks/ticker")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1 .pill.st-paused")).to_have_text("paused")
    expect(page.locator(".flash")).to_contain_text("paused")

    def paused_skip_shown() -> bool:
        page.goto("/tasks/ticker?status=skipped")
        return page.locator("tbody tr td.note", has_text="paused").count() > 0

    wait_until(paused_skip_shown, timeout=10, every=0.5)
    page.goto("/")
    expect(page.locator('tr[data-task="ticker"] .light')).to_have_attribute("aria-label", "paused")

    page.goto("/tasks/ticker")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .pill.st-paused")).to_have_count(0)
    resumed_at = server.http.get("/tasks/ticker").json()
    assert resumed_at["paused"] is False


def test_a_broken_task_is_in_problems(page: Page) -> None:
    page.goto("/")
    expect(page.locator("nav [data-problem-count]")).to_have_text("1")
    page.get_by_role("link", name=re.compile("Problems")).click()
    item = page.locator(".problem-item", has_text="broken task")
    expect(item).to_contain_text("seconds")
    expect(item).to_contain_text("task.yaml")
    item.get_by_role("link", name="broken").click()
    expect(page.locator("[role=alert]")).to_contain_text("This task is broken")


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_the_screen_light_and_dark(
    browser: Browser, server: Server, width: int, tmp_path: Path
) -> None:
    # TASSE_SCREENSHOTS=docs/screenshots keeps them (to look at, and for the docs)
    shots = Path(os.environ.get("TASSE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    run = server.http.post("/tasks/greeter/run", json={"params": {"WHO": "screenshot"}}).json()
    server.finished(run["id"])
    for scheme in ("light", "dark"):
        context = browser.new_context(
            base_url=str(server.http.base_url),
            viewport={"width": width, "height": 900},
            color_scheme=scheme,
        )
        page = context.new_page()
        for path, name in (
            ("/", "overview"),
            ("/tasks/greeter", "task"),
            (f"/runs/{run['id']}", "run"),
        ):
            page.goto(path)
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            wide = page.evaluate(WIDEST)
            assert overflow <= 0, f"{path} at {width} px is {overflow} px too wide: {wide}"
            page.screenshot(path=str(shots / f"{name}-{width}-{scheme}.png"), full_page=True)
        context.close()
