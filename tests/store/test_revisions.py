"""The store's mark of the defined tasks and the pauses on a real PostgreSQL: it moves
with each task added, replaced or deleted and each pause taken or ended, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tasse.store.pauses import Pause, PauseTable
from tasse.store.revisions import SharedRevisions
from tasse.store.runs import RunStore
from tests.store.test_store import node_store


@pytest.fixture
def store() -> Iterator[RunStore]:
    with node_store("rev") as opened:
        yield opened


def test_the_mark_moves_with_every_change_of_tasks_or_pauses_and_only_then(
    store: RunStore,
) -> None:
    revisions, pauses = SharedRevisions(store), PauseTable(store)
    marks = [revisions.read()]
    assert revisions.read() == marks[0]  # nothing changed

    def changed() -> None:
        marks.append(revisions.read())
        assert marks[-1] != marks[-2]

    store.save_task("one", "api", {"name": "one", "command": ["true"]})
    changed()
    store.save_task("two", "api", {"name": "two", "command": ["true"]})
    changed()
    store.save_task("one", "api", {"name": "one", "command": ["false"]})  # same count
    changed()
    assert marks[-1].pauses == marks[0].pauses
    pauses.save({"one": Pause(datetime.now(UTC), "by hand")})
    changed()
    assert marks[-1].tasks == marks[-2].tasks
    pauses.save({"one": None})
    changed()
    store.delete_task("two")
    changed()
    assert revisions.read() == marks[-1]
    # A pause taken and ended between two reads leaves the store as it was, and the
    # mark too: a node that saw neither has nothing to change.
    assert marks[-2].pauses == marks[-4].pauses
