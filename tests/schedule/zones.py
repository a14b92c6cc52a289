"""Clock changes of the tz database, found by probing zoneinfo, and made-up zones (tests only)."""

from __future__ import annotations

import functools
import io
import struct
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Probing every two days finds every change: no zone changes its clock twice within two days.
PROBE = 2 * 24 * 3600


@dataclass(frozen=True)
class Transition:
    """A change of a zone's UTC offset: at this instant, from one offset to another (seconds)."""

    zone: str
    at: datetime
    before: int
    after: int

    @property
    def shift(self) -> int:
        """Seconds the wall clock jumps: positive forward (a gap), negative back (a repeat)."""
        return self.after - self.before


def offset_at(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@functools.cache
def transitions(name: str, first_year: int = 2025, last_year: int = 2030) -> tuple[Transition, ...]:
    """Every change of the zone's offset in these years."""
    zone = ZoneInfo(name)
    second = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())
    found: list[Transition] = []
    offset = offset_at(zone, second)
    while second < end:
        following = offset_at(zone, second + PROBE)
        if following != offset:
            low, high = second, second + PROBE
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset_at(zone, middle) == offset else (low, middle)
            at = datetime.fromtimestamp(high, UTC)
            found.append(Transition(name, at, offset, following))
        second, offset = second + PROBE, following
    return tuple(found)


@functools.cache
def dst_zones() -> tuple[str, ...]:
    """Every IANA zone whose UTC offset changes in 2025-2030."""
    return tuple(name for name in sorted(zoneinfo.available_timezones()) if transitions(name))


def made_up_zone(key: str, offsets: list[tuple[datetime, timedelta]]) -> ZoneInfo:
    """A zone at UTC until the first instant, then at each offset from its instant (TZif v2)."""
    kinds = [timedelta(0)] + [offset for _, offset in offsets]
    times = [int(at.timestamp()) for at, _ in offsets]
    counts = (0, 0, 0, len(times), len(kinds), 4)
    header = struct.pack(">4sc15x6l", b"TZif", b"2", *counts)
    v1_header = struct.pack(">4sc15x6l", b"TZif", b"2", 0, 0, 0, 0, 1, 4)
    v1_body = struct.pack(">lBB", 0, 0, 0) + b"UTC\0"
    body = b"".join(struct.pack(">q", at) for at in times)
    body += bytes(range(1, len(times) + 1))
    body += b"".join(struct.pack(">lBB", int(o.total_seconds()), 0, 0) for o in kinds)
    body += b"UTC\0"
    data = v1_header + v1_body + header + body + b"\n\n"
    return ZoneInfo.from_file(io.BytesIO(data), key=key)
