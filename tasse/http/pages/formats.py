"""How the pages write times, durations and sizes: short, exact on hover, in the server's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tasse.models import Run


def span(seconds: float) -> str:
    """A duration as a person says it: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def run_duration(run: Run, now: datetime | None = None) -> str:
    """How long the run took, or has been running; '' for a fire that did not run."""
    if run.started_at is None:
        return ""
    end = run.finished_at or now or datetime.now(UTC)
    return span(max(0.0, (end - run.started_at).total_seconds()))


def ago(moment: datetime, now: datetime | None = None) -> str:
    """'12 s ago', '3 min ago', 'in 5 min' (the scripts keep it current)."""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if abs(seconds) < 1:
        return "now"
    # Whole seconds, and two units at most: "3 min 5 s ago" says more than anyone reads.
    words = span(abs(seconds)).split(" ") if abs(seconds) >= 60 else [f"{abs(seconds):.0f}", "s"]
    short = " ".join(words[:2])
    return f"{short} ago" if seconds > 0 else f"in {short}"


def until(moment: datetime, now: datetime | None = None) -> str:
    """A countdown to a coming moment: 'in 4 s'; 'due' once it has passed."""
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return "due" if seconds < 0.5 else ago(moment, now)


def local(moment: datetime, zone: ZoneInfo) -> str:
    """A moment in the server's zone, to the second: 2026-12-01 09:30:00."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def filesize(size: int) -> str:
    """Bytes as KiB/MiB/GiB with one decimal."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
