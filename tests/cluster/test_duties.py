"""What runs once per cluster, and what any node answers: two `tasse serve --cluster` nodes
as processes. A failing task's notifications reach a signed webhook once each, through a
kill -9 of the scheduler mid-burst (redelivered at most around the kill, with the same
X-Tasse-Notification id); a run on node A is read and followed through node B."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import wait_until
from tests.notify.receivers import Webhook

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(180)]


def _sent_ids(hook: Webhook) -> Counter[str]:
    return Counter(message["id"] for message in hook.received)


def test_each_notification_delivered_once_across_nodes_and_a_kill() -> None:
    hook = Webhook().start()
    env = {"TASSE_NOTIFY": hook.target, "TASSE_NOTIFY_RATE_WINDOW": "0"}
    try:
        with Rig() as rig:
            rig.task("boom", 'schedules: ["* * * * * *"]\n', script="echo boom\nexit 1\n")
            rig.start("a", env)
            assert rig.wait_for_scheduler() == "a"
            b = rig.start("b", env)
            time.sleep(3)
            b.stop()  # a standby started again resumes nothing the scheduler delivers
            b = rig.start("b", env)
            time.sleep(3)
            before_kill = set(_sent_ids(hook))
            assert len(before_kill) >= 4

            rig.kill("a")  # mid-burst: a failure a second, each told at once
            wait_until(lambda: rig.scheduler() == "b", timeout=15)
            time.sleep(6)
            left = rig.query("SELECT id FROM tasse_outbox WHERE status <> 'sent'")
            assert len(left) <= 2, f"b did not deliver what a left pending: {left}"
            a = rig.start("a", env)  # its journal's rows, if any, reach the store now
            time.sleep(4)
            b.stop()
            a.stop()
            time.sleep(0.5)

            stored = dict(rig.query("SELECT id, status FROM tasse_outbox"))
            received = _sent_ids(hook)
            assert hook.rejected == 0
            assert set(received) == set(stored), "every notification reached the webhook"
            assert set(stored.values()) == {"sent"}
            twice = {id_: n for id_, n in received.items() if n > 1}
            # Only what was in flight when a died may come again (same id, at-least-once):
            # sent by a, its `sent` state not yet in the store.
            assert all(id_ not in before_kill for id_ in twice), twice
            assert len(twice) <= 3, twice
            assert any(id_ not in before_kill for id_ in received)  # b delivered after the kill
    finally:
        hook.stop()


def test_a_run_on_one_node_read_and_followed_through_the_other() -> None:
    with Rig() as rig:
        script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done\n"
        rig.task("talker", "overlap: parallel\n", script=script)
        a = rig.start("a")
        assert rig.wait_for_scheduler() == "a"
        b = rig.start("b")
        started = b.http.post("/tasks/talker/run")  # handed to the scheduler: runs on a
        assert started.status_code == 202
        run_id = started.json()["id"]

        lines, end = _follow(b, run_id)
        assert lines == [f"line {i}" for i in range(1, 7)]
        assert end["status"] == "succeeded"

        answer = b.http.get(f"/runs/{run_id}/log")
        assert answer.status_code == 200
        assert answer.headers["x-tasse-node"] == "a"
        assert answer.text.splitlines() == [f"line {i}" for i in range(1, 7)]
        assert a.http.get(f"/runs/{run_id}/log").text == answer.text

        rig.kill("a")
        gone = b.http.get(f"/runs/{run_id}/log")
        assert gone.status_code == 503
        assert "node 'a'" in gone.json()["detail"]


def _follow(node: object, run_id: str) -> tuple[list[str], dict[str, object]]:
    """The log lines and the `end` event of a run's live stream, read through `node`."""
    client: httpx.Client = node.http  # type: ignore[attr-defined]
    lines: list[str] = []
    event, data = "", []
    with client.stream("GET", f"/runs/{run_id}/log/events", timeout=20) as stream:
        assert stream.headers["x-tasse-node"] == "a"
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and event:
                if event == "log":
                    lines += [text for text in data if text]
                elif event == "end":
                    return lines, json.loads("\n".join(data))
                event, data = "", []
    raise AssertionError(f"the stream ended without `end`: {lines}")
