"""Crontab files read as cron reads them: real crontabs (Debian's /etc/crontab, the example of
Debian's crontab(5), lines of its other editions), each job checked for its name, schedule,
environment, time zone and the command a real /bin/sh runs; bad lines named by number.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasse.tasks.cron_lines import command_words, split_command
from tasse.tasks.crontab_files import (
    USER_VARIABLE,
    CronJob,
    Crontab,
    has_user_field,
    is_crontab,
    parse_crontab,
)
from tasse.tasks.definitions import TaskDefinition

CRONTABS = Path(__file__).parent / "crontabs"
#: /etc/crontab of Debian's cron-daemon-common 3.0pl1-162, as installed
DEBIAN_ETC_CRONTAB = CRONTABS / "etc" / "crontab"
#: "EXAMPLE CRON FILE" of crontab(5) in Debian's cron 3.0pl1-162 (the man page's roff
#: writes `\%`, which is also what a crontab needs for a literal `%`)
CRONTAB_5_EXAMPLE = CRONTABS / "crontab.5-example"
#: lines of crontab(5)'s later editions, and the extensions Tasse reads
EXTENSIONS = CRONTABS / "extensions.crontab"


def read(path: Path, system: bool | None = None) -> Crontab:
    user_field = has_user_field(str(path)) if system is None else system
    return parse_crontab(path.read_text(), str(path), user_field)


def by_name(crontab: Crontab) -> dict[str, TaskDefinition]:
    return {job.definition.name: job.definition for job in crontab.jobs}


def shell_runs(job: CronJob) -> subprocess.CompletedProcess[str]:
    """Run the job's command line for real, with its stdin, as the runner would."""
    definition = job.definition
    assert definition.command is not None
    return subprocess.run(
        definition.command,
        input=definition.stdin or "",
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def syntax_ok(job: CronJob) -> None:
    """The shell reads the command without a syntax error (`sh -n`: parsed, not run)."""
    assert job.definition.command is not None
    shell, dash_c, command = job.definition.command
    assert dash_c == "-c"
    checked = subprocess.run([shell, "-n", "-c", command], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- Debian's /etc/crontab ------------------------------------------------------------------


def test_debians_etc_crontab_is_four_tasks_run_by_sh_with_its_path_for_root() -> None:
    crontab = read(DEBIAN_ETC_CRONTAB)
    assert crontab.problems == []
    assert has_user_field(str(DEBIAN_ETC_CRONTAB))
    path = "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
    expected = {
        "run-parts-cron.hourly-4b500c": (
            "17 * * * *",
            "cd / && run-parts --report /etc/cron.hourly",
        ),
        "anacron-run-parts-cron.daily-8b4c48": (
            "25 6 * * *",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
        ),
        "anacron-run-parts-cron.weekly-aa8d08": (
            "47 6 * * 7",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }",
        ),
        "anacron-run-parts-cron.monthly-fd70d2": (
            "52 6 1 * *",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }",
        ),
    }
    found = {d.name: (d.schedule, d.command) for d in by_name(crontab).values()}
    assert found == {
        name: (schedule, ["/bin/sh", "-c", command])
        for name, (schedule, command) in expected.items()
    }
    for job in crontab.jobs:
        assert job.user == "root"
        definition = job.definition
        assert definition.env == {"SHELL": "/bin/sh", "PATH": path, USER_VARIABLE: "root"}
        assert definition.timezone is None
        assert definition.stdin is None
        # The drawing above the first job ends with a commented-out job line: no description.
        assert definition.description == ""
        syntax_ok(job)


def test_the_system_format_is_told_by_place_and_a_user_crontab_reads_the_user_as_command() -> None:
    assert has_user_field("/etc/crontab")
    assert has_user_field("/etc/cron.d/e2scrub_all")
    assert not has_user_field("/app/crontab")
    assert not has_user_field("/etc/crontab.d/x")
    as_user_crontab = read(DEBIAN_ETC_CRONTAB, system=False)
    commands = [job.definition.command for job in as_user_crontab.jobs]
    assert commands[0] == ["/bin/sh", "-c", "root\tcd / && run-parts --report /etc/cron.hourly"]


# -- crontab(5)'s example ---------------------------------------------------------------------


def test_crontab_5s_example_file_line_by_line() -> None:
    crontab = read(CRONTAB_5_EXAMPLE)
    assert crontab.problems == []
    jobs = {job.line: job for job in crontab.jobs}
    # line: name, schedule, description, command, stdin
    expected = {
        7: (
            "daily.job-out-b13a43",
            "5 0 * * *",
            "run five minutes after midnight, every day",
            "$HOME/bin/daily.job >> $HOME/tmp/out 2>&1",
            None,
        ),
        9: (
            "monthly-73cb6f",
            "15 14 1 * *",
            "run at 2:15pm on the first of every month -- output mailed to paul",
            "$HOME/bin/monthly",
            None,
        ),
        11: (
            "mail-10pm-joe-a5c9b1",
            "0 22 * * 1-5",
            "run at 10 pm on weekdays, annoy Joe",
            'mail -s "It\'s 10pm" joe',
            "Joe,\n\nWhere are your kids?\n",
        ),
        12: (
            "echo-run-minutes-after-midn-2am-4am-3d6ed1",
            "23 0-23/2 * * *",
            "",
            'echo "run 23 minutes after midn, 2am, 4am ..., everyday"',
            None,
        ),
        13: (
            "echo-run-at-after-every-sunday-824986",
            "5 4 * * sun",
            "",
            'echo "run at 5 after 4 every sunday"',
            None,
        ),
        15: (
            "expr-null-echo-wax-the-floor-8c5582",
            "33 22 * * *",
            "Run once every 9th day, even across week, month, and year boundaries:",
            "expr $(date +%s) / 60 / 60 / 24 % 9 > /dev/null || echo Wax the floor.",
            None,
        ),
    }
    assert set(jobs) == set(expected)
    for line, (name, schedule, description, command, stdin) in expected.items():
        definition = jobs[line].definition
        assert definition.name == name
        assert definition.schedule == schedule
        assert definition.description == description
        assert definition.command == ["/bin/sh", "-c", command]
        assert definition.stdin == stdin
        # MAILTO is kept for the notifications to come; no mail is sent.
        assert definition.env == {"SHELL": "/bin/sh", "MAILTO": "paul"}
        assert definition.timezone is None
        syntax_ok(jobs[line])


def test_the_escaped_percent_reaches_expr_as_a_percent() -> None:
    job = next(job for job in read(CRONTAB_5_EXAMPLE).jobs if job.line == 15)
    done = shell_runs(job)
    # With the backslash left in, expr fails with a syntax error on stderr.
    assert done.stderr == ""
    assert done.stdout in ("", "Wax the floor.\n")


def test_percent_signs_become_the_commands_standard_input() -> None:
    crontab = parse_crontab("* * * * * cat -A %Joe,%%Where are your kids?%\n", "t")
    done = shell_runs(crontab.jobs[0])
    assert done.stdout == "Joe,$\n$\nWhere are your kids?$\n"


# -- later editions and extensions -------------------------------------------------------------


def test_other_editions_lines_macros_seconds_years_zones_and_quoted_values() -> None:
    crontab = read(EXTENSIONS)
    assert crontab.problems == []
    jobs = {job.line: job.definition for job in crontab.jobs}
    base = {
        "SHELL": "/bin/bash",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GREETING": "  hello, world  ",
        "MAILTO": "",
    }
    berlin = {**base, "CRON_TZ": "Europe/Berlin"}
    # line: name, schedule, time zone, environment, command, stdin
    expected = {
        8: (
            "echo-run-every-4th-hour-on-the-1st-and-a954fe",
            "0 */4 1 * mon",
            None,
            base,
            'echo "run every 4th hour on the 1st and on every Monday"',
            None,
        ),
        9: (
            "echo-run-at-midn-on-every-sunday-an-d8ef5b",
            "0 0 */2 * sun",
            None,
            base,
            'echo "run at midn on every Sunday that\'s an uneven date"',
            None,
        ),
        11: (
            "echo-2nd-saturday-54652d",
            "0 4 8-14 * *",
            None,
            base,
            'test $(date +%u) -eq 6 && echo "2nd Saturday"',
            None,
        ),
        14: ("warm-cache", "@reboot", None, base, "curl -fsS http://localhost:8080/warm", None),
        15: ("find-tmp-1e5bac", "@daily", None, base, "find /tmp -mtime +7 -delete", None),
        19: ("echo-tick-54a547", "*/15 * * * * *", "Europe/Berlin", berlin, "echo tick", None),
        20: (
            "echo-weekday-mornings-of-only-f9325b",
            "0 30 8 * * mon-fri 2027",
            "Europe/Berlin",
            berlin,
            'echo "weekday mornings of 2027 only"',
            None,
        ),
        22: (
            "echo-nine-in-berlin-still-cron_tz-afbecc",
            "0 9 * * *",
            "Europe/Berlin",
            {**berlin, "TZ": "Asia/Tokyo"},
            'echo "nine in Berlin still: CRON_TZ decides"',
            None,
        ),
        24: (
            "echo-nine-in-tokyo-now-c78feb",
            "0 9 * * *",
            "Asia/Tokyo",
            {**base, "CRON_TZ": "", "TZ": "Asia/Tokyo"},
            'echo "nine in Tokyo now" ',
            "stdin line one\nline two\n",
        ),
    }
    assert set(jobs) == set(expected)
    for line, (name, schedule, zone, env, command, stdin) in expected.items():
        definition = jobs[line]
        assert (definition.name, definition.schedule, definition.timezone) == (name, schedule, zone)
        assert definition.env == env
        assert definition.command == ["/bin/bash", "-c", command]
        assert definition.stdin == stdin
    assert jobs[14].description == "Warm the cache once the server is up."
    assert jobs[19].description == "Every 15 seconds, in Berlin time"


def test_names_stay_when_other_lines_and_the_schedule_change() -> None:
    before = parse_crontab("0 1 * * * backup.sh\n*/5 * * * * ping.sh\n", "t")
    after = parse_crontab("# new\nX=1\n0 0 * * * other.sh\n30 2 * * * backup.sh\n", "t")
    assert before.jobs[0].definition.name == after.jobs[1].definition.name == "backup.sh-6798ca"
    # The same command twice is two tasks, told apart by their order.
    twice = parse_crontab("0 8 * * * backup.sh\n0 20 * * * backup.sh\n", "t")
    names = [job.definition.name for job in twice.jobs]
    assert names[0] == "backup.sh-6798ca"
    assert len(set(names)) == 2
    assert twice.problems == []


def test_command_words_make_a_valid_readable_name() -> None:
    assert command_words("cd / && run-parts --report /etc/cron.hourly") == "run-parts-cron.hourly"
    assert command_words("$HOME/bin/x.sh > /dev/null 2>&1") == "x.sh-null"
    assert command_words("'$X' %") == "cron"
    assert len(command_words("a" * 100)) == 40


# -- bad lines --------------------------------------------------------------------------------


def test_each_bad_line_is_a_problem_naming_file_and_line_and_the_rest_load() -> None:
    text = "\n".join(
        [
            "61 * * * * echo minute",  # 1
            "* * * * *",  # 2
            "BAD-NAME=1",  # 3
            "# tasse: name=ok",  # 4
            "0 0 * * * echo named",  # 5
            "# tasse: name=",  # 6
            "0 0 * * * echo empty name",  # 7
            "# tasse: colour=red",  # 8
            "0 0 * * * echo unknown key",  # 9
            "# tasse: name=ok",  # 10
            "0 1 * * * echo named twice",  # 11
            "TZ=Mars/Olympus",  # 12
            "0 0 * * * echo on mars",  # 13
            "TZ=UTC",  # 14
            "@fortnightly echo never",  # 15
            "0 0 * * * echo good",  # 16
            "0 0 * * * %only input",  # 17
        ]
    )
    crontab = parse_crontab(text, "/app/jobs.cron")
    assert [job.line for job in crontab.jobs] == [5, 16]
    problems = "\n".join(crontab.problems)
    for line, why in [
        (1, "field minute: 61"),
        (2, "has no command after '* * * * *'"),
        (3, "variable name 'BAD-NAME'"),
        (7, "`# tasse: name=`"),
        (9, "`# tasse:` knows only name=NAME"),
        (11, "task 'ok' appears twice"),
        (13, "TZ set at line 12: unknown time zone 'Mars/Olympus'"),
        (15, "unknown macro '@fortnightly'"),
        (17, "has no command"),
    ]:
        assert f"/app/jobs.cron: line {line}: {why}" in problems
    assert len(crontab.problems) == 9

    # A bad line keeps its task's last good version (as a broken task.yaml does).
    name = parse_crontab("0 0 * * * echo x", "t").jobs[0].definition.name
    assert parse_crontab("61 0 * * * echo x", "t").broken == {name}
    assert parse_crontab("TZ=Nowhere\n0 0 * * * echo x", "t").broken == {name}
    assert parse_crontab("# tasse: name=kept\n0 0 * * * cat %" + "x" * 5000, "t").broken == {"kept"}


def test_a_system_line_without_a_user_and_command_is_a_problem() -> None:
    crontab = parse_crontab("17 * * * * root\n", "/etc/cron.d/x", system=True)
    assert crontab.problems == ["/etc/cron.d/x: line 1: has no user and command after '17 * * * *'"]


def test_stdin_beyond_one_pipe_write_is_a_problem_of_its_line() -> None:
    crontab = parse_crontab(f"0 0 * * * cat %{'x' * 5000}\n", "t")
    assert crontab.jobs == []
    assert "line 1" in crontab.problems[0]
    assert "stdin" in crontab.problems[0]


# -- cron's `%`, character for character --------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "command", "stdin"),
    [
        ("echo hi", "echo hi", None),
        ("echo hi % there", "echo hi ", " there\n"),
        ("cat %a%b", "cat ", "a\nb\n"),
        ("cat %a%", "cat ", "a\n"),
        ("cat %", "cat ", ""),
        ("date +\\%s", "date +%s", None),
        ("echo a\\\\b", "echo a\\b", None),
        ("echo \\x", "echo \\x", None),
        ("cat %50\\% off", "cat ", "50% off\n"),
        ("cat %a\\b", "cat ", "a\\b\n"),
        ("cat %a\\", "cat ", "a\\\n"),
        ("echo \\\\%in", "echo \\", "in\n"),
    ],
)
def test_split_command_follows_debians_do_command(
    written: str, command: str, stdin: str | None
) -> None:
    split = split_command(written)
    assert (split.command, split.stdin) == (command, stdin)


# -- telling a crontab from a JSON or YAML seed ---------------------------------------------------


@pytest.mark.parametrize(
    ("location", "text", "crontab"),
    [
        ("/app/crontab", "", True),
        ("/app/jobs.cron", "- name: x", True),
        ("/srv/cron.d/backup", "", True),
        ("https://example.org/ops.crontab?ref=main", "", True),
        ("/app/seed", "SHELL=/bin/sh\n# c\n\n*/5 * * * * echo\n@daily x", True),
        ("/app/seed.txt", "0 5 * * * echo", True),
        ("/app/seed.json", '[{"name": "x", "command": ["true"]}]', False),
        ("/app/seed.yaml", "- name: x\n  command: [echo, a=b]\n", False),
        ("/app/seed.yaml", "tasks:\n  - name: x\n", False),
        ("/app/seed.yaml", "# nothing yet\n", False),
    ],
)
def test_is_crontab_by_name_or_by_lines(location: str, text: str, crontab: bool) -> None:
    assert is_crontab(location, text) is crontab
