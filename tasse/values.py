"""Values that end up in a process: argv items, environment variable names and values."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

#: a task's name: its folder's name, a URL path segment, a log folder
TASK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


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


def _variable_name(name: str) -> str:
    if not name or not name.isascii() or not name.replace("_", "a").isalnum():
        raise ValueError(f"{name!r} is not a valid variable name (letters, digits, _)")
    return name


#: the name of an environment variable (or of a run parameter)
VariableName = Annotated[str, AfterValidator(_variable_name)]
