"""Property tests: whatever a task.yaml or an API definition holds, the answer is a task or
an error naming it, never another exception (which would stop every task from loading, or
answer 500)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tasse.errors import TaskConfigError
from tasse.schedule.specs import CronSpec, DateSpec, IntervalSpec
from tasse.schedule.triggers import upcoming
from tasse.tasks import discovery
from tasse.tasks.catalog import validate
from tasse.tasks.definitions import TaskDefinition, to_task
from tasse.tasks.task import Task, TaskSpec
from tasse.tasks.triggers import build_triggers

#: bounded, so the file runs in seconds; no example database left in the working tree
bounded = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SPEC_KEYS = sorted(TaskSpec.model_fields)
TRIGGER_KEYS = sorted(
    {*IntervalSpec.model_fields, *CronSpec.model_fields, *DateSpec.model_fields} - {"trigger"}
)
DEFINITION_KEYS = sorted(TaskDefinition.model_fields)

#: strings that have broken parsers before, or look like what a key expects
ODD_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "\ud800",
        "\u202e",
        "\ufeff",
        "\u2028",
        "\x85",
        "\U0001d518\U0001d52b\U0001d526",  # Fraktur letters, outside the BMP
        "..",
        "../../etc/passwd",
        "/",
        "a" * 300,
        "*/5 * * * *",
        "0 0 31 2 *",
        "@reboot",
        "@hourly",
        "L",
        "last fri",
        "5#3",
        "*/0",
        "1-3,7",
        "mon-fri",
        "UTC",
        "Europe/Berlin",
        "Pacific/Kiritimati",
        "America/St_Johns",
        "Etc/GMT+12",
        "3.12",
        ">=3.10,<3.13",
        "9999-12-31",
        "0001-01-01T00:00:00+14:00",
        "2020-13-45",
        "1e309",
        ".nan",
    ]
)
TEXT = ODD_TEXT | st.text(st.characters(exclude_categories=()), max_size=20)
CRONTAB = st.lists(
    st.sampled_from(["*", "*/5", "0", "59", "1-3", "mon", "L", "?", "#"]), max_size=8
)
NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([2**63, -(2**63), 10**4000])
    | st.floats(allow_nan=True, allow_infinity=True)
)
SCALARS = (
    st.none()
    | st.booleans()
    | NUMBERS
    | TEXT
    | CRONTAB.map(" ".join)
    | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    | st.dates()
)
KEYS = st.sampled_from(SPEC_KEYS + TRIGGER_KEYS) | TEXT | st.integers() | st.none()


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and mappings of `leaves`, a few levels deep."""
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4)
        ),
        max_leaves=12,
    )


VALUES = nested(SCALARS)
#: cheaper to draw than VALUES, for the many keys of one spec
SHALLOW = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, SCALARS, max_size=3)
TRIGGERS = st.fixed_dictionaries(
    {"trigger": st.sampled_from(["interval", "cron", "date"]) | VALUES},
    optional=dict.fromkeys(TRIGGER_KEYS, SCALARS),
)
SCHEDULE = TRIGGERS | CRONTAB.map(" ".join) | VALUES
#: mostly the real keys with values of about the right shape, some of anything
SPECS = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(SPEC_KEYS, SHALLOW),
        "scheduler": TRIGGERS | VALUES,
        "schedule": SCHEDULE,
        "schedules": st.lists(SCHEDULE, max_size=3),
    },
) | st.dictionaries(KEYS, VALUES, max_size=6)


T = TypeVar("T")


def task_error_or(call: Callable[[], T]) -> T | TaskConfigError:
    """What `call` returns, or the TaskConfigError it raises (any other exception fails)."""
    try:
        return call()
    except TaskConfigError as error:
        return error


def to_yaml(data: Any, flow: bool) -> bytes:
    """YAML text of `data`; lone surrogates are written as they are (not valid UTF-8)."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=flow)
    return text.encode("utf-8", errors="surrogatepass")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One task folder whose task.yaml each example rewrites (task.py stays)."""
    task = tmp_path_factory.mktemp("tasks") / "prop"
    task.mkdir()
    (task / "task.py").write_text("print('hi')\n")
    return task


def load(folder: Path, content: bytes) -> Task | TaskConfigError:
    """Write task.yaml and load the folder as a scan does."""
    (folder / "task.yaml").write_bytes(content)
    result = discovery.load_or_error(folder)
    if isinstance(result, TaskConfigError):
        assert str(result).startswith("task 'prop': "), result
        assert "task.yaml" in str(result), result
        assert len(str(result)) < 2000  # a huge value is shown shortened
    else:
        assert isinstance(result, Task)
    return result


@bounded
@given(content=st.binary(max_size=2000))
@example(content=b"\xff\xfe\x00")
@example(content=b"description: \xc3\x28\n")
def test_any_bytes_are_a_task_or_its_error(folder: Path, content: bytes) -> None:
    load(folder, content)


YAML_TOKENS = st.sampled_from(
    [
        "\n",
        " ",
        "  ",
        "- ",
        ": ",
        "? ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "!!int ",
        "!!bool ",
        "!!timestamp ",
        "!!float ",
        "!!binary ",
        "!!set ",
        "!!python/object:os.system ",
        "<<: ",
        "'",
        '"',
        "\\",
        "#",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "|\n",
        ">\n",
        "\t",
        "0x",
        "1e9",
        "2020-13-45",
        "\x00",
        "\ufeff",
    ]
)


@bounded
@given(text=st.lists(YAML_TOKENS | st.sampled_from(SPEC_KEYS) | TEXT, max_size=40).map("".join))
# Found by these tests (each raised ValueError, KeyError, AttributeError or RuntimeError
# out of discovery, stopping the whole scan, or crashed libyaml):
@example(text="description: 2020-13-45\n")
@example(text="enabled: !!bool maybe\n")
@example(text="description: !!timestamp x\n")
@example(text="timeout: " + "9" * 5000 + "\n")
@example(text="description: " + "[" * 30_000 + "]" * 30_000 + "\n")
@example(text="- " * 30_000 + "x\n")
@example(text='entrypoint: "\\0"\n')
@example(text="timezone: " + "a" * 300 + "\n")  # zoneinfo's file name too long: OSError
def test_any_text_is_a_task_or_its_error(folder: Path, text: str) -> None:
    load(folder, text.encode("utf-8", errors="surrogatepass"))


@bounded
@given(data=SPECS | VALUES, flow=st.booleans())
def test_any_structure_is_a_task_or_its_error(folder: Path, data: Any, flow: bool) -> None:
    load(folder, to_yaml(data, flow))


@bounded
@given(data=SPECS, flow=st.booleans())
def test_a_loaded_task_is_scheduled_or_its_error(
    folder: Path, data: dict[Any, Any], flow: bool
) -> None:
    result = load(folder, to_yaml(data, flow))
    if isinstance(result, TaskConfigError):
        return
    # Not `service.prepare`, which turns any exception into a task error: the API's
    # definitions go through build_triggers without that net.
    triggers = task_error_or(lambda: build_triggers(result, "UTC"))
    if isinstance(triggers, TaskConfigError):
        assert "task.yaml" in str(triggers)
        return
    fires = upcoming(triggers, 3, datetime.now(UTC))
    assert fires == sorted(fires)


#: what a JSON body can hold (Python's json reads NaN and Infinity too, as FastAPI does)
JSON_SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON_KEYS = st.sampled_from(DEFINITION_KEYS) | TEXT
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=4)
    ),
    max_leaves=12,
)
#: cheaper to draw than JSON, for the many keys of one definition
JSON_SHALLOW = (
    JSON_SCALARS
    | st.lists(JSON_SCALARS, max_size=3)
    | st.dictionaries(JSON_KEYS, JSON_SCALARS, max_size=3)
)
DEFINITIONS = st.fixed_dictionaries(
    {"name": st.just("api-task") | TEXT},
    optional={
        **dict.fromkeys(set(DEFINITION_KEYS) - {"name"}, JSON_SHALLOW),
        "command": st.lists(TEXT, min_size=1, max_size=3),
        "python_ref": st.sampled_from(["mod:func", "a.b:c.d", "os:system"]) | TEXT,
        "scheduler": TRIGGERS.map(lambda t: {k: v for k, v in t.items() if is_json(v)}),
        "schedules": st.lists(CRONTAB.map(" ".join), max_size=2),
    },
)


def is_json(value: Any) -> bool:
    """True for the scalars a JSON body can hold (not dates)."""
    return isinstance(value, str | int | float | bool | type(None))


@bounded
@given(body=DEFINITIONS | st.dictionaries(JSON_KEYS, JSON, max_size=5))
def test_any_api_definition_is_a_task_or_its_error(
    tmp_path_factory: pytest.TempPathFactory, body: dict[str, Any]
) -> None:
    # What POST/PUT /tasks do with a body (catalog.validate, then catalog._prepare): only
    # TaskConfigError may come out, which the API answers with 422.
    definition = task_error_or(lambda: validate(body, "api-task"))
    if isinstance(definition, TaskConfigError):
        assert str(definition).startswith("task 'api-task': the API definition")
        return
    task = to_task(definition, "api", tmp_path_factory.getbasetemp() / "work")
    task_error_or(lambda: build_triggers(task, "UTC"))
