"""Examples at the end of `tasse --help` and of each command's `--help`."""

from __future__ import annotations

import argparse

#: the main parser's examples: the first commands a new user types
MAIN = """\
examples:
  tasse serve                                  serve data/tasks on 127.0.0.1:4243
  tasse serve --data-dir /srv/tasse --http-listen-address 0.0.0.0:4243
  tasse list                                   every task, its next fire and its state
  tasse run helloworld                         run a task once, here, and see its output
  tasse next "*/5 * * * *" --count 3           when a crontab line fires
  tasse validate                               exit 1 if any task folder is broken (CI)

`tasse COMMAND --help` shows each command's flags and examples."""

#: each command's examples, by its name (status, list, logs, runs and new keep theirs beside
#: their flags, in overview.py, history.py and scaffold.py)
COMMANDS = {
    "serve": """\
examples:
  tasse serve
  tasse serve --data-dir /srv/tasse --http-listen-address 0.0.0.0:4243 --api-token-file token
  tasse serve --store-address postgresql://tasse@db/tasse
  tasse serve --pre-seed-jobs seeds.yaml --keep-runs 100""",
    "run": """\
examples:
  tasse run helloworld
  tasse run greet --param name=Ada
  tasse run report -- --verbose --since yesterday""",
    "validate": """\
examples:
  tasse validate                   plan every task and its environment; exit 1 if any is broken
  tasse validate --build           also build the environments not built yet (slow)""",
    "next": """\
examples:
  tasse next helloworld                     the next 5 fires (the running server's, if any)
  tasse next nightly-report --count 10
  tasse next "0 9 * * mon-fri" --timezone Europe/Berlin
  tasse next "@daily\"""",
    "env": """\
examples:
  tasse env disk-usage             its environment: status, hash, interpreter, path
  tasse env disk-usage --rebuild   build it again from scratch
  tasse env --gc                   remove environments no task folder needs, unused 30 days
  tasse env --gc --max-age-days 0  remove them now""",
    "pause": """\
examples:
  tasse pause backup --reason "disk swap"
  tasse pause backup --http-listen-address 127.0.0.1:8080 --api-token-file token""",
    "resume": """\
examples:
  tasse resume backup""",
    "import": """\
examples:
  tasse import crontab jobs.cron --dry-run     show the task folders it would write
  tasse import crontab /etc/crontab --system   a crontab with a user field
  tasse import crontab -                       from stdin: crontab -l | tasse import crontab -""",
}


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put the examples under the main parser's help and each known command's."""
    _append(parser, MAIN)
    for action in parser._actions:  # argparse keeps its sub-commands here only
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                if name in COMMANDS:
                    _append(command, COMMANDS[name])


def _append(parser: argparse.ArgumentParser, examples: str) -> None:
    parser.epilog = f"{parser.epilog}\n\n{examples}" if parser.epilog else examples
    # The examples' line breaks and columns as written.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
