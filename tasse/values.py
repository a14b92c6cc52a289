"""Values every part checks the same way: names, time zones, argv items and environment values."""

from __future__ import annotations

import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

#: a task's name: its folder's name, a URL path segment, a log folder
TASK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: `<table>_alembic_version` and index names stay within PostgreSQL's and MySQL's 63
TABLE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
SCHEMA_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def scalar_to_text(value: Any) -> Any:
    """YAML turns `PORT: 8080` into an int; env values and args are text for a process."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def shorten(text: str, most: int = 300) -> str:
    """Text cut in the middle to `most` characters: error messages quote bad values whole."""
    return text if len(text) <= most else f"{text[: most // 2]}...{text[-most // 2 :]}"


def _passable_to_a_process(value: str) -> str:
    # A NUL byte or a lone surrogate cannot cross into argv or the environment.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


Text = Annotated[str, BeforeValidator(scalar_to_text), AfterValidator(_passable_to_a_process)]

#: a title is a heading and a table cell: long enough for a sentence, short enough for a row
MAX_TITLE_LENGTH = 200


def _one_line_title(value: str) -> str:
    title = value.strip()
    if not title:
        raise ValueError("is empty: leave the title out, and the name is shown")
    # splitlines knows every line break (\r, \v, U+2028, …), not only \n.
    if len(title.splitlines()) > 1 or title.splitlines()[0] != title:
        raise ValueError("must be one line (it is a heading and a table cell)")
    if len(title) > MAX_TITLE_LENGTH:
        raise ValueError(f"is {len(title)} characters long; at most {MAX_TITLE_LENGTH}")
    return title


#: a task's display name: free text on one line, shown with the task's name beside it
Title = Annotated[Text, AfterValidator(_one_line_title)]


def _variable_name(name: str) -> str:
    if not name or not name.isascii() or not name.replace("_", "a").isalnum():
        raise ValueError(f"{name!r} is not a valid variable name (letters, digits, _)")
    return name


#: the name of an environment variable (or of a run parameter)
VariableName = Annotated[str, AfterValidator(_variable_name)]


def check_table_name(value: str) -> str:
    """The table name prefix, if it can name tables on every backend."""
    if not TABLE_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"store table name {value!r} cannot be used: it must be letters, digits and _,"
            " not start with a digit, and be at most 40 characters"
        )
    return value


def check_schema_name(value: str | None) -> str | None:
    """The schema name, if it can name a schema on every backend; None for none or empty."""
    if not value:
        return None  # `ST_STORE_SCHEMA_NAME=` in an env file means the default schema
    if not SCHEMA_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"store schema name {value!r} cannot be used: it must be letters, digits and _,"
            " not start with a digit, and be at most 63 characters"
        )
    return value


def check_timezone(value: str) -> str:
    """Accept an IANA zone name such as `Europe/Berlin`; reject anything zoneinfo does not know."""
    try:
        ZoneInfo(value)
    # OSError: a name zoneinfo looks up as a file and the system refuses (too long, say).
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {shorten(value)!r} (use an IANA name like 'Europe/Berlin')"
        ) from None
    return value
