"""Human output: aligned tables, times and durations in words a person reads, and colour
only where a person looks (a terminal, and not with NO_COLOR set: https://no-color.org)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from tasse.models import RunStatus

#: a command's handler, as `main` calls it
Handler = Callable[[Any, argparse.Namespace], int]
#: ANSI colours by what they mean
RED, YELLOW, GREEN, DIM = "31;1", "33", "32", "2"
#: each status's colour; those not here stay plain
STATUS_COLOURS = {
    RunStatus.failed: RED,
    RunStatus.timed_out: RED,
    RunStatus.interrupted: RED,
    RunStatus.missed: YELLOW,
    RunStatus.running: GREEN,
    RunStatus.succeeded: GREEN,
    RunStatus.skipped: DIM,
    RunStatus.coalesced: DIM,
}
#: a cell longer than this is cut on a terminal (its whole text is in --json)
MAX_CELL = 60


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything non-empty."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str | None, on: bool) -> str:
    """The text in that colour, when colour is on."""
    return f"\x1b[{colour}m{text}\x1b[0m" if on and colour else text


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    colours: Sequence[str | None] = (),
    stream: TextIO = sys.stdout,
) -> None:
    """Columns aligned to their widest cell; row `i` in `colours[i]` on a terminal."""
    colour = use_colour(stream)
    cut = _cut if stream.isatty() else _one_line
    rows = [[cut(cell) for cell in row] for row in rows]
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header))]
    print(_line(header, widths), file=stream)
    for number, row in enumerate(rows):
        painted = colours[number] if number < len(colours) else None
        print(paint(_line(row, widths), painted, colour), file=stream)


def print_json(value: Any, stream: TextIO = sys.stdout) -> None:
    """Indented JSON, for scripts (and for `jq`)."""
    print(json.dumps(value, indent=2, ensure_ascii=False), file=stream)


def print_json_line(value: Any, stream: TextIO = sys.stdout) -> None:
    """One JSON value on one line, flushed: a stream of them is read a line at a time."""
    print(json.dumps(value, ensure_ascii=False), file=stream, flush=True)


def piped(handler: Handler) -> Handler:
    """The handler, ending quietly when its reader goes away (`tasse runs x | head`)."""

    @functools.wraps(handler)
    def handle(settings: Any, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except BrokenPipeError:
            # Python would complain again flushing stdout at exit: point it at nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # as a shell reports a command ended by SIGPIPE

    return handle


def moment(value: datetime | None) -> str:
    """A time in this machine's zone, to the second ("-" for none)."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """`0.42s`, `12.3s`, `4m 05s`, `2h 03m`; "-" for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)).rstrip()


def _one_line(cell: str) -> str:
    return " ".join(cell.split())  # an error of several lines stays on its row


def _cut(cell: str) -> str:
    width = max(MAX_CELL, shutil.get_terminal_size().columns // 3)
    cell = _one_line(cell)
    return cell if len(cell) <= width else cell[: width - 1] + "…"
