"""Crontab files as seeds, with a real `tasse serve`: lines fire through a real /bin/sh, their
`%` input arrives, edits add and remove tasks, and bad lines are named where errors show.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import StartServer
from tests.http.test_api import wait_until
from tests.tasks.test_seeds import EDIT_APPLIES_WITHIN, errors, run, tasks, wait_fire


def write_crontab(path: Path, *lines: str) -> Path:
    """Write the crontab in one step (a reader never sees half of it)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(f"{line}\n" for line in lines))
    os.replace(partial, path)
    return path


def test_a_crontab_line_with_seconds_fires_through_sh_with_its_percent_input(
    start_server: StartServer, tmp_path: Path
) -> None:
    crontab = write_crontab(
        tmp_path / "jobs",
        "GREETING=hi",
        "# Says hello, then what it was given.",
        "# tasse: name=hello",
        '* * * * * * echo "$GREETING from $0"; cat % there%50\\% more',
    )
    server = start_server("--crontab", str(crontab))

    task = tasks(server)["hello"]
    assert task["source"] == "seed"
    assert task["description"] == "Says hello, then what it was given."
    assert task["schedules"] == ["* * * * * *"]
    fire = wait_fire(server, "hello")
    assert fire["status"] == "succeeded"
    # $0 is the shell cron would use; the text after the first % is its standard input.
    log = server.http.get(f"/runs/{fire['id']}/log").text
    assert log == "hi from /bin/sh\n there\n50% more\n"


def test_edits_to_a_crontab_add_and_remove_its_tasks_and_bad_lines_are_named(
    start_server: StartServer, tmp_path: Path
) -> None:
    crontab = write_crontab(tmp_path / "app.cron", "0 3 * * * echo backup", "@daily echo report")
    # Given as a seed file, the crontab is told apart from JSON and YAML by its name.
    server = start_server("--pre-seed-jobs", str(crontab))
    first = set(tasks(server))
    assert len(first) == 2
    backup = next(name for name in first if name.startswith("echo-backup-"))

    write_crontab(
        crontab,
        "30 4 * * * echo backup",  # another time: the same task, rescheduled
        "*/5 * * * * echo ping",
        "99 * * * * echo broken",
    )

    def applied() -> bool:
        now = tasks(server)
        return len(now) == 2 and now[backup]["schedules"] == ["30 4 * * *"]

    wait_until(applied, timeout=EDIT_APPLIES_WITHIN)
    ping = next(name for name in tasks(server) if name.startswith("echo-ping-"))
    assert run(server, ping)[1] == "ping\n"
    problems = list(errors(server).values())
    assert f"{crontab}: line 3: field minute: 99 in '99' is outside 0-59" in problems


def test_crontabs_from_the_environment_and_a_system_crontab_load_together(
    start_server: StartServer, tmp_path: Path
) -> None:
    mine = write_crontab(tmp_path / "mine", "@hourly echo mine")
    theirs = write_crontab(tmp_path / "theirs", "@hourly  nobody  echo as $TASSE_CRON_USER")
    server = start_server(
        "--system-crontab", str(theirs), TASSE_CRONTAB=f"{mine}, {tmp_path / 'absent'}"
    )
    listed = tasks(server)
    assert len(listed) == 2
    other = next(name for name in listed if name.startswith("echo-as-"))
    # Tasse runs every line as its own user; the line's user is kept in the environment.
    assert run(server, other)[1] == "as nobody\n"
    assert "run as the server's own user" in server.output.read_text()
    # An unreadable crontab is a problem, and keeps the others' tasks (and its own) as they are.
    assert any("absent: cannot be read" in problem for problem in errors(server).values())
    applied = server.output.read_text().count(" applied: ")
    write_crontab(mine)
    wait_until(lambda: server.output.read_text().count(" applied: ") > applied, timeout=2)
    assert len(tasks(server)) == 2
