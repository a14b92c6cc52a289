"""How the pages write durations, times and sizes, and which requests get a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tasse.http.pages.formats import ago, filesize, local, span, until
from tasse.http.pages.negotiation import wants_html
from tasse.http.pages.views import log_tail

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.0123, "12 ms"),
        (4.21, "4.2 s"),
        (42, "42 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (7800, "2 h 10 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_a_duration_is_said_as_a_person_says_it(seconds: float, said: str) -> None:
    assert span(seconds) == said


def test_moments_are_said_relative_to_now() -> None:
    assert ago(NOW - timedelta(seconds=185), NOW) == "3 min ago"
    assert ago(NOW + timedelta(seconds=30), NOW) == "in 30 s"
    assert until(NOW + timedelta(seconds=4), NOW) == "in 4 s"
    assert until(NOW - timedelta(seconds=4), NOW) == "due"


def test_a_moment_is_shown_in_the_servers_zone() -> None:
    assert local(NOW, ZoneInfo("Europe/Berlin")) == "2026-12-01 13:00:00"


def test_sizes_use_binary_units() -> None:
    assert [filesize(n) for n in (512, 300 * 1024, 5 * 1024**3)] == [
        "512 B",
        "300.0 KiB",
        "5.0 GiB",
    ]


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html", False),
        ("", False),
    ],
)
def test_a_browser_gets_the_page_and_a_script_the_json(accept: str, page: bool) -> None:
    assert wants_html(accept) is page


def test_a_long_log_is_shown_from_a_line_start_near_its_end(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_bytes(b"".join(b"line %05d \xc3\xa9\n" % n for n in range(30_000)))
    tail = log_tail(log, limit=1000)
    assert tail.truncated
    assert tail.size == log.stat().st_size
    assert tail.text.startswith("line ")
    assert tail.text.endswith("line 29999 é\n")
    assert "\ufffd" not in tail.text  # no character cut in half


def test_a_fire_that_did_not_run_has_an_empty_log(tmp_path: Path) -> None:
    tail = log_tail(tmp_path / "absent.txt")
    assert (tail.text, tail.size, tail.truncated) == ("", 0, False)
