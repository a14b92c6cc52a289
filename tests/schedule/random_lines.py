"""Random crontab lines in every form the parser takes, aimed at one wall-clock moment."""

from __future__ import annotations

import random
from datetime import datetime

from tasse.schedule.cronline import MACROS

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def random_line(rng: random.Random, focus: datetime | None = None) -> str:
    """A 5-, 6- or 7-field line or a macro; fields often include `focus`'s values."""
    kind = rng.random()
    if kind < 0.08:
        macro = rng.choice(list(MACROS))
        return macro.upper() if rng.random() < 0.2 else macro
    at: dict[str, int] = {}
    if focus is not None:
        at = {"second": focus.second, "minute": focus.minute, "hour": focus.hour}
        at |= {"day": focus.day, "month": focus.month, "year": focus.year}
    second = random_field(rng, 0, 59, at.get("second"))
    month = random_field(rng, 1, 12, at.get("month"), star=0.6)
    fields = [
        random_field(rng, 0, 59, at.get("minute")),
        random_field(rng, 0, 23, at.get("hour")),
        random_field(rng, 1, 31, at.get("day"), star=0.5),
        named(rng, month, MONTHS, 1),
        weekday_field(rng, focus),
    ]
    if kind < 0.7:
        return " ".join(fields)
    year = random_field(rng, 2024, 2031, at.get("year"), star=0.5)
    if kind < 0.88:
        return " ".join([second, *fields])
    return " ".join([second, *fields, year])


def weekday_field(rng: random.Random, focus: datetime | None) -> str:
    """A weekday field: numbers (7 for Sunday at times), names in any case, or both."""
    text = random_field(rng, 0, 6, None if focus is None else focus.isoweekday() % 7, star=0.6)
    if rng.random() < 0.2:
        text = ",".join("7" if part == "0" else part for part in text.split(","))
    return named(rng, text, WEEKDAYS, 0)


def named(rng: random.Random, text: str, names: tuple[str, ...], first: int) -> str:
    """Swap plain numbers for names (jan, SUN, Fri) now and then."""
    if rng.random() > 0.3 or "*" in text or "/" in text:
        return text

    def name(number: str) -> str:
        if int(number) - first >= len(names):
            return number  # 7 (Sunday) has no name of its own: "fri-sun" would run backwards
        word = names[int(number) - first]
        return rng.choice((word, word.upper(), word.title()))

    parts = ["-".join(name(number) for number in part.split("-")) for part in text.split(",")]
    return ",".join(parts)


def random_field(
    rng: random.Random, low: int, high: int, focus: int | None = None, star: float = 0.25
) -> str:
    """One field: `*`, `*/n`, a value, a range, `a-b/n`, `a/n` or a list of those."""
    if rng.random() < star:
        return "*" if rng.random() < 0.6 else f"*/{rng.randint(1, max(1, (high - low) // 2))}"
    centre = focus if focus is not None and rng.random() < 0.7 else rng.randint(low, high)
    items = [item(rng, low, high, centre)]
    while rng.random() < 0.3:
        items.append(item(rng, low, high, rng.randint(low, high)))
    return ",".join(items)


def item(rng: random.Random, low: int, high: int, centre: int) -> str:
    """One list item holding `centre`: a value, a range, a stepped range or `a/n`."""
    kind = rng.random()
    if kind < 0.4:
        return str(centre)
    start = max(low, centre - rng.randint(0, 3))
    end = min(high, centre + rng.randint(0, 5))
    if kind < 0.7:
        return f"{start}-{end}"
    step = rng.randint(1, 7)
    if kind < 0.9:
        return f"{centre}-{max(centre, end)}/{step}"
    return f"{centre}/{step}"
