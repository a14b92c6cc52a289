"""Store calls with a deadline: a database that stops answering costs a timeout, not a thread.

A statement timeout is enforced by the database; one that does not answer at all (paused,
cut off by the network) leaves the calling thread waiting on its socket. So each call
runs on a daemon thread of its own, and the caller waits only until the deadline: the
thread left behind ends whenever the database answers, or with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DeadlineError(TimeoutError):
    """The store did not answer within the deadline."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} took longer than {seconds:g} s")


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def call_with_deadline(function: Callable[[], T], seconds: float, what: str = "a store call") -> T:
    """`function()` on a thread of its own; DeadlineError if it has not returned in time."""
    outcome: _Outcome[T] = _Outcome()

    def work() -> None:
        try:
            outcome.value = function()
        except BaseException as error:  # handed to the caller, who decides
            outcome.error = error
        finally:
            outcome.done.set()

    threading.Thread(target=work, name="tasse-store-call", daemon=True).start()
    if not outcome.done.wait(seconds):
        raise DeadlineError(what, seconds)
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


async def await_with_deadline(
    function: Callable[[], T], seconds: float, what: str = "a store call"
) -> T:
    """`function()` off the event loop; DeadlineError if it has not returned in time."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return  # the caller gave up on it already
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value: T | None = function()
            error: BaseException | None = None
        except BaseException as raised:
            value, error = None, raised
        with contextlib.suppress(RuntimeError):  # the loop closed while the store was slow
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="tasse-store-call", daemon=True).start()
    try:
        return await asyncio.wait_for(future, seconds)
    except TimeoutError:
        raise DeadlineError(what, seconds) from None
