"""One line of a crontab: a job's schedule, user and command, or a variable; what the shell
runs, what it reads, and a name for the task.

`%` follows Debian's cron (do_command.c), character for character: the first `%` not
preceded by a backslash ends the command and the rest is written to its standard input,
each further unescaped `%` a newline, with a newline added at the end if the input does
not end with one. In the command, `\\%` becomes `%` and `\\\\` becomes `\\`; in the input,
`\\%` becomes `%`; any other backslash stays.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tasse.schedule.cronline import is_reboot, parse_line

_TOKEN = re.compile(r"[^ \t]+")
#: `NAME=value`, the name unquoted or in quotes, as Debian's env.c reads it
_VARIABLE = re.compile(r"""[ \t]*("[^"=]*"|'[^'=]*'|[^ \t="'][^ \t=]*)[ \t]*=[ \t]*(.*)""")


@dataclass(frozen=True)
class CronCommand:
    """A crontab line's command as cron hands it over."""

    #: the line's command as written (after the schedule and the user)
    written: str
    #: what `sh -c` runs
    command: str
    #: its standard input; None when the line has no `%`
    stdin: str | None


def split_job(line: str, system: bool) -> tuple[str, str | None, str]:
    """A job line's schedule, user (system format) and the rest: the command as written."""
    tokens = list(_TOKEN.finditer(line))
    # 6 fields could also be 5 and a command starting like a weekday: the most fields that
    # parse win, as a 6-field schedule is what a line with seconds means.
    counts = (1,) if tokens and tokens[0].group().startswith("@") else (7, 6, 5)
    error: ValueError | None = None
    for count in counts:
        if len(tokens) < count:
            continue
        schedule = " ".join(token.group() for token in tokens[:count])
        try:
            if not is_reboot(schedule):
                parse_line(schedule)
        except ValueError as refused:
            error = refused  # the fewest fields' reason is the likeliest one
            continue
        if len(tokens) <= count + system:
            error = ValueError(f"has no {'user and ' if system else ''}command after {schedule!r}")
            continue
        user = tokens[count].group() if system else None
        return schedule, user, line[tokens[count + system].start() :]
    if error is not None:
        raise error
    needs = "a schedule, a user and a command" if system else "a schedule and a command"
    raise ValueError(f"is neither a job ({needs}) nor NAME=value: {line.strip()!r}")


def parse_variable(line: str) -> tuple[str, str] | None:
    """`NAME=value` as cron reads it: the name and value, quotes stripped; None if no such line."""
    match = _VARIABLE.fullmatch(line)
    if match is None:
        return None
    name, value = match.group(1), match.group(2)
    if name[0] in "\"'":
        name = name[1:-1]
    if value[:1] in ("'", '"'):
        closing = value.find(value[0], 1)
        if closing < 0 or value[closing + 1 :].strip(" \t"):
            return None  # an unclosed quote, or more after it: cron takes it for a job line
        return name, value[1:closing]
    return name, value.rstrip(" \t")


def split_command(written: str) -> CronCommand:
    """The command and standard input of a crontab line's command part, as cron splits it."""
    command: list[str] = []
    escaped = False
    for index, char in enumerate(written):
        if escaped:
            if char in "%\\":
                command[-1] = char  # the backslash before it goes
            else:
                command.append(char)
            escaped = False
        elif char == "%":
            return CronCommand(written, "".join(command), _input(written[index + 1 :]))
        else:
            command.append(char)
            escaped = char == "\\"
    return CronCommand(written, "".join(command), None)


def _input(text: str) -> str:
    # Debian's loop: a backslash is held back until the next character shows whether it
    # escapes a `%` (then it goes) or not (then it is written after all).
    written: list[str] = []
    escaped = needs_newline = False
    for char in text:
        if escaped:
            if char != "%":
                written.append("\\")
        elif char == "%":
            char = "\n"
        escaped = char == "\\"
        if not escaped:
            written.append(char)
            needs_newline = char != "\n"
    if escaped:
        written.append("\\")
    if needs_newline:
        written.append("\n")
    return "".join(written)


def job_name(command: CronCommand, user: str | None = None, occurrence: int = 1) -> str:
    """A readable name for a job that stays as long as its command does: words and a hash."""
    text = f"{user or ''}\0{command.written}\0{occurrence}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{command_words(command.command)}-{digest[:6]}"


#: words that say little about what a command does
_FILLER = {"cd", "test", "exec", "env", "nice", "ionice", "sudo", "time", "if", "then", "do"}
_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*")
#: room left for `-` and the hash within a task name's 64 characters
_WORDS_MAX = 40


def command_words(command: str) -> str:
    """The first telling words of a command, slugged: `run-parts-cron.hourly`."""
    words: list[str] = []
    for token in command.split():
        word = token.rsplit("/", 1)[-1].strip("\"'();{},.:!?").lower()
        if word in _FILLER or word.isdigit() or not _WORD.fullmatch(word):
            continue  # options (`-x`), operators (`&&`), variables, redirections, numbers
        if len("-".join([*words, word])) > _WORDS_MAX:
            if not words:
                words.append(word[:_WORDS_MAX])
            break
        words.append(word)
    return "-".join(words) or "cron"
