"""Rows a statement returned, as a plain-text table for a run's log (as psql prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

#: rows printed at most; the rest are counted (a log is read by a person, not parsed)
MAX_ROWS_SHOWN = 1000
#: characters of one value printed at most; a long text would make every line that wide
MAX_CELL = 200
#: how a database NULL is printed (an empty cell could be an empty string)
NULL = "NULL"
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def table_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Header, rule and one line per row; numbers right-aligned, the rest left-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)]) for index, name in enumerate(columns)
    ]
    numeric = [_is_numeric(row[index] for row in rows) for index in range(len(columns))]
    lines = [
        " | ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)),
        "-+-".join("-" * width for width in widths),
    ]
    for row in cells:
        aligned = (
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(row, widths, numeric, strict=True)
        )
        lines.append(" | ".join(aligned))
    return [line.rstrip() for line in lines]


def count_line(shown: int, total: int) -> str:
    """`(3 rows)`, or `(5,000 rows; the first 1,000 shown)` when some were left out."""
    counted = f"{total:,} row{'' if total == 1 else 's'}"
    return f"({counted})" if shown == total else f"({counted}; the first {shown:,} shown)"


def _cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bytes | bytearray | memoryview):
        text = "\\x" + bytes(value).hex()  # as PostgreSQL prints bytea
    else:
        # One row, one line: a value's line breaks and tabs would tear the table apart.
        text = str(value).translate(_ESCAPES)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _is_numeric(values: Any) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        for value in present
    )
