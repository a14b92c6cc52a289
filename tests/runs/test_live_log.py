"""A run's output as text for a live page: the tail first, whole lines, exact offsets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tasse.runs.live_log import PARTIAL_WAIT, TAIL, Text, Truncated, follow_text, tail_start
from tasse.runs.logs import RunLogWriter
from tasse.store.log_files import LogLayout

pytestmark = pytest.mark.anyio

RUN_ID = "20261122-101500-123456-9f3a1c"


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[RunLogWriter]:
    writer = RunLogWriter(LogLayout(tmp_path / "logs"), "report", RUN_ID)
    writer.open()
    yield writer
    if not writer.closed:
        writer.close()


async def following(
    writer: RunLogWriter, offset: int | None = None, live: bool = True
) -> AsyncIterator[Text | Truncated | None]:
    return follow_text(writer.path, writer if live else None, offset, asyncio.Event(), idle=5)


async def test_lines_arrive_whole_as_they_are_written(writer: RunLogWriter) -> None:
    writer.write(b"first\n")
    async with contextlib.aclosing(await following(writer)) as pieces:
        assert await anext(pieces) == Text("first\n", 6)
        writer.write(b"second\nthi")  # a line and the start of the next
        began = time.monotonic()
        assert await asyncio.wait_for(anext(pieces), 5) == Text("second\n", 13)
        assert time.monotonic() - began < 0.2  # woken by the write, not by a poll
        writer.write(b"rd\n")
        assert await asyncio.wait_for(anext(pieces), 5) == Text("third\n", 19)
        writer.close()
        assert [piece async for piece in pieces] == []


async def test_a_line_without_newline_waits_a_little_then_goes(writer: RunLogWriter) -> None:
    async with contextlib.aclosing(await following(writer)) as pieces:
        waiting = asyncio.ensure_future(anext(pieces))
        await asyncio.sleep(0.01)
        began = time.monotonic()
        writer.write(b"Password: ")
        assert await asyncio.wait_for(waiting, 5) == Text("Password: ", 10)
        assert PARTIAL_WAIT * 0.8 <= time.monotonic() - began < PARTIAL_WAIT + 0.1


async def test_a_character_split_between_writes_is_never_split_in_the_text(
    writer: RunLogWriter,
) -> None:
    euro = "€".encode()  # three bytes
    async with contextlib.aclosing(await following(writer)) as pieces:
        writer.write(b"price: " + euro[:1])
        assert await asyncio.wait_for(anext(pieces), 5) == Text("price: ", 7)  # offset: 7
        writer.write(euro[1:] + b" 5\n")
        assert await asyncio.wait_for(anext(pieces), 5) == Text("€ 5\n", 13)
        writer.write(b"bad \xff byte\n")
        assert await asyncio.wait_for(anext(pieces), 5) == Text("bad \ufffd byte\n", 24)


async def test_resuming_at_an_offset_gives_the_rest_exactly(writer: RunLogWriter) -> None:
    writer.write("one\ntwo ü\nthree\n".encode())
    writer.close()
    whole = [piece async for piece in await following(writer, live=False)]
    assert whole == [Text("one\ntwo ü\nthree\n", 17)]
    rest = [piece async for piece in await following(writer, offset=4, live=False)]
    assert rest == [Text("two ü\nthree\n", 17)]
    beyond = [piece async for piece in await following(writer, offset=10**6, live=False)]
    assert beyond == []


async def test_a_big_log_starts_with_its_last_256_kib_at_a_line(writer: RunLogWriter) -> None:
    line = b"x" * 99 + b"\n"
    writer.write(line * 3000)  # 300,000 bytes
    writer.close()
    start, size = tail_start(writer.path)
    assert size == 300_000
    assert size - TAIL <= start < size - TAIL + 100
    assert start % 100 == 0
    pieces = [piece async for piece in await following(writer, live=False)]
    assert pieces[0] == Truncated(size=300_000, offset=start)
    texts = [piece for piece in pieces[1:] if isinstance(piece, Text)]
    assert "".join(text.text for text in texts) == (line * ((size - start) // 100)).decode()
    assert texts[-1].offset == size


async def test_quiet_for_the_idle_time_yields_none_and_stop_ends_it(
    writer: RunLogWriter,
) -> None:
    stop = asyncio.Event()
    pieces = follow_text(writer.path, writer, None, stop, idle=0.05)
    async with contextlib.aclosing(pieces):
        assert await asyncio.wait_for(anext(pieces), 5) is None
        stop.set()
        assert [piece async for piece in pieces] == []


async def test_a_page_that_goes_away_leaves_no_waiting_behind(writer: RunLogWriter) -> None:
    before = len(asyncio.all_tasks())
    pieces = follow_text(writer.path, writer, None, asyncio.Event(), idle=60)
    reading = asyncio.ensure_future(anext(pieces))
    await asyncio.sleep(0.05)  # it waits for a write now
    reading.cancel()  # as Starlette does when the client disconnects
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    await pieces.aclose()
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before


async def test_output_that_keeps_coming_is_sent_in_a_few_pieces(writer: RunLogWriter) -> None:
    async def write_fast() -> None:
        for number in range(200):
            writer.write(f"line {number}\n".encode())
            await asyncio.sleep(0.001)
        writer.close()

    writing = asyncio.ensure_future(write_fast())
    pieces = [piece async for piece in await following(writer)]
    await writing
    texts = [piece for piece in pieces if isinstance(piece, Text)]
    assert "".join(text.text for text in texts) == "".join(f"line {n}\n" for n in range(200))
    # About one send per GAP rather than one per write.
    assert len(texts) < 200 / 4
