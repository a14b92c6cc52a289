"""10,000 tasks in a real browser: the overview pages through them on the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.http.pages.browser import browser
from tests.http.test_api import Server

__all__ = ["browser"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
TASKS = 10_000


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("many") / "data"
    tasks = data / "tasks"
    for index in range(TASKS):
        folder = tasks / f"job-{index:05d}"
        folder.mkdir(parents=True)
        (folder / "task.py").write_text(f"print({index})\n")
        # Nightly at a different minute each: nothing fires during the test.
        (folder / "task.yaml").write_text(
            f'schedule: "{index % 60} {index // 60 % 24} * * *"\n'
            f"description: {'invoice' if index % 1000 == 7 else 'nightly'} job {index}\n"
        )
    server = Server(data)
    server.start(timeout=120)  # it loads 10,000 folders before it answers
    assert server.http.get("/health").json()["tasks"] == TASKS
    yield server
    code, output = server.stop()
    assert code == 0, output


def test_page_through_ten_thousand_tasks(browser: Browser, crowded: Server) -> None:
    context = browser.new_context(base_url=str(crowded.http.base_url))
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/")
    expect(page.locator("h1 .count")).to_have_text("10000")
    expect(page.locator("tbody tr")).to_have_count(50)
    expect(page.locator("tbody tr").first).to_contain_text("job-00000")
    expect(page.locator(".pager .position")).to_have_text("1\N{EN DASH}50 of 10000")

    page.get_by_role("link", name="Next →").click()
    expect(page.locator(".pager .position")).to_have_text("51\N{EN DASH}100 of 10000")
    expect(page.locator("tbody tr").first).to_contain_text("job-00050")

    # The last page, by its address: 200 pages of 50.
    page.goto("/?page=200")
    expect(page.locator("tbody tr")).to_have_count(50)
    expect(page.locator("tbody tr").last).to_contain_text("job-09999")
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)

    # Search narrows the 10,000 on the server: ten descriptions say "invoice".
    page.goto("/")
    page.get_by_label("Search").fill("invoice")
    expect(page.locator(".pager .position")).to_have_text("1\N{EN DASH}10 of 10")
    expect(page.locator("tbody tr")).to_have_count(10)
    expect(page.locator("tbody tr").first).to_contain_text("job-00007")
    expect(page.locator("tbody tr").first).to_contain_text("At 00:07")
    context.close()
