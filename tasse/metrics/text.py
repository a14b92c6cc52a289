"""The text format for the families with a series per task, written without prometheus_client.

With 10,000 tasks these families hold tens of thousands of samples; `generate_latest`
formats each one in about 6 µs on this box (a third of a second for 50,000). Here a
series' labels are written once, when it first appears (`labels`), and a scrape only
joins them with the values: under 1 µs a sample. The lines are the text format (0.0.4)
prometheus_client writes, and the tests read them with its parser.
"""

from __future__ import annotations

from collections.abc import Mapping

#: a family's samples: a series' labels as written (`labels`; "" for none) → its value
Samples = Mapping[str, float]


def labels(**values: str) -> str:
    """A series' labels as the text format writes them between braces, values escaped."""
    return ",".join([f'{name}="{_escape(value)}"' for name, value in values.items()])


def family(name: str, kind: str, help: str, samples: Samples) -> str:
    """One family's lines: HELP, TYPE and a sample per series (`name` is the sample name)."""
    head = f"# HELP {name} {_escape_help(help)}\n# TYPE {name} {kind}\n"
    # str() of an int or a float is text Prometheus parses (a float's shortest round trip).
    lines = [
        f"{name}{{{series}}} {value}\n" if series else f"{name} {value}\n"
        for series, value in samples.items()
    ]
    return head + "".join(lines)


def _escape(value: str) -> str:
    # Task names, statuses and triggers never hold these (values.TASK_NAME_PATTERN);
    # escaped anyway, as one wrong line would make the whole scrape fail.
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")
