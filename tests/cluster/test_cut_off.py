"""A scheduler node cut off from PostgreSQL by its network, and reconnected 15 s later.

The node runs in a network namespace of its own, joined to the host's by a veth pair; the
private PostgreSQL listens on the host's end too. Downing the host's end cuts the node off
mid-flight (its connections hang, as across a broken switch; nothing is closed cleanly).
The other node takes over within 10 s; the cut-off node, back, finds its token stale and
becomes a standby; every fire time has exactly one record. Needs root and `ip netns`
(skipped with the reason elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster.harness import Rig
from tests.http.test_api import Server, wait_until
from tests.store.private_postgres import PrivateCluster

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(240)]

TASKS = [f"t{i:02d}" for i in range(10)]
WORKERS = ("--run-on", "workers")
#: the host's and the namespace's ends of the veth pair (a /30 of its own, per process, so
#: two test runs on one machine do not meet)
_NET = f"10.231.{os.getpid() % 250 + 1}"
HOST_IP, NODE_IP, NETWORK = f"{_NET}.1", f"{_NET}.2", f"{_NET}.0/30"
TAKEOVER, CUT_FOR = 10.0, 15.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextlib.contextmanager
def _namespace() -> Iterator[tuple[str, str]]:
    """A network namespace linked to the host's by a veth pair: (its name, the host's end)."""
    name, host_end = f"tasse{os.getpid()}", f"vth{os.getpid() % 100000}"
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("cutting a node off needs root and iproute2's `ip netns`")
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"network namespaces are not allowed here: {error.stderr.strip()}")
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", "vtn", "netns", name)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", name, "addr", "add", f"{NODE_IP}/30", "dev", "vtn")
        _ip("-n", name, "link", "set", "vtn", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name, host_end
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", host_end)
        _ip("netns", "del", name)


def test_a_node_cut_off_from_the_store_and_back() -> None:
    with _namespace() as (namespace, host_end):
        postgres = PrivateCluster(listen=f"127.0.0.1,{HOST_IP}", trusted=NETWORK)
        with Rig(postgres) as rig:
            for name in TASKS:
                rig.task(name, 'schedules: ["* * * * * *"]\n')
            store = f"postgresql://postgres@{HOST_IP}:{postgres.port}/postgres"
            cut = Server(rig.data("cut"), flags=rig.flags("cut", store, WORKERS))
            cut.prefix = ["ip", "netns", "exec", namespace]
            cut.listen_host = NODE_IP
            cut.http = httpx.Client(base_url=f"http://{NODE_IP}:{cut.port}", timeout=10)
            rig.add("cut", cut)
            assert rig.wait_for_scheduler() == "cut"
            b = rig.start("b", flags=WORKERS)
            rig.start_worker("w1")
            began = time.time()
            time.sleep(6)

            cut_at = time.time()
            _ip("link", "set", host_end, "down")
            wait_until(lambda: rig.scheduler() == "b", timeout=TAKEOVER + 5)
            took = wait_until(lambda: rig.first_claim_after(cut_at, "b"), timeout=TAKEOVER)
            time.sleep(max(0.0, cut_at + CUT_FOR - time.time()))
            _ip("link", "set", host_end, "up")
            wait_until(lambda: "is a standby now" in cut.output.read_text(), timeout=20)
            time.sleep(6)  # it fires nothing more: its claims are refused, b keeps firing
            ended = time.time()
            assert rig.scheduler() == "b"
            b.stop()
            cut.stop()
            wrong = rig.fires_without_one_record(TASKS, began, ended)

        assert took <= TAKEOVER
        assert wrong == {}, f"fires without exactly one record: {sorted(wrong.items())[:20]}"
