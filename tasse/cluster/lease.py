"""The scheduler lease's keeper: takes the lease when it is free, renews it while held,
and tells its node when it gained or lost it.

Renewed every `RENEW_EVERY` seconds for `TTL` seconds, so a holder that dies is replaced
within TTL + RENEW_EVERY (8 s). The node believes it holds the lease only until TTL minus a
margin after its last renewal was sent — but that belief only saves queries: every claim
checks the token in the database (`store/claims.py`), which alone decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from tasse.store.deadline import await_with_deadline
from tasse.store.leases import SCHEDULER_LEASE, Leases

logger = logging.getLogger(__name__)

#: seconds a lease lives after each renewal
TTL = 6.0
#: seconds between renewals (and between a standby's tries)
RENEW_EVERY = 2.0
#: the node stops believing it holds the lease this long before the database would
MARGIN = 1.0


class SchedulerLease:
    """Keeps this node's hold on the scheduler lease, or its bid for it."""

    def __init__(
        self,
        leases: Leases,
        node: str,
        on_gained: Callable[[int], Awaitable[None]],
        on_lost: Callable[[], None],
        ttl: float = TTL,
        renew_every: float = RENEW_EVERY,
    ):
        self._leases = leases
        self.node = node
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._ttl = ttl
        self._renew_every = renew_every
        #: the fencing token of this node's hold, if it has one
        self.token: int | None = None
        self._valid_until = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        """Whether this node holds the lease, as far as it knows."""
        return self.token is not None and time.monotonic() < self._valid_until

    def start(self) -> None:
        """Start bidding for and renewing the lease."""
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def stop(self) -> None:
        """Stop renewing, and let the lease go so another node takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        token, self.token = self.token, None
        if token is not None:
            try:
                await await_with_deadline(
                    lambda: self._leases.release(SCHEDULER_LEASE, self.node, token),
                    self._renew_every,
                    "releasing the scheduler lease",
                )
            except Exception as error:  # it expires by itself within TTL
                logger.warning("the scheduler lease could not be released: %s", error)

    async def _keep(self) -> None:
        while True:
            started = time.monotonic()
            await self.renew()
            await asyncio.sleep(max(0.0, self._renew_every - (time.monotonic() - started)))

    async def renew(self) -> None:
        """One renewal (or bid); tells the node when the hold began or ended."""
        sent = time.monotonic()
        try:
            token = await await_with_deadline(
                lambda: self._leases.acquire(SCHEDULER_LEASE, self.node, self._ttl),
                self._renew_every,
                "renewing the scheduler lease",
            )
        except Exception as error:
            if self.token is not None and not self.held:
                logger.error("node %s lost the scheduler lease: %s", self.node, error)
                self._lose()
            return
        if token is None:
            if self.token is not None:
                logger.warning("node %s: another node holds the scheduler lease now", self.node)
                self._lose()
            return
        self._valid_until = sent + self._ttl - MARGIN
        if token != self.token:
            logger.warning("node %s holds the scheduler lease (token %d)", self.node, token)
            self.token = token
            await self._on_gained(token)

    def _lose(self) -> None:
        self.token = None
        self._on_lost()
