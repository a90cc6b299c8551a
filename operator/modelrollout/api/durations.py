"""Durations as the API writes them: "30s", "5m", "1h30m", "250ms".

Every layer needs them (steps, intervals, delays, deadlines), and the same text must mean the
same thing to pydantic, to the API server's CEL `duration()` and to a person reading YAML. So
the wire format is the subset of Go's duration syntax that all three agree on: one or more
`<integer><unit>` parts with the units ms, s, m and h. Fractions, days and signs are refused.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated

import pydantic

PATTERN = r"^([0-9]+(ms|s|m|h))+$"
MAX_LENGTH = 32  # bounds the CEL cost of rules that parse durations

_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_WHOLE = re.compile(PATTERN)
_UNITS = {
    "ms": datetime.timedelta(milliseconds=1),
    "s": datetime.timedelta(seconds=1),
    "m": datetime.timedelta(minutes=1),
    "h": datetime.timedelta(hours=1),
}


def parse_duration(text: str) -> datetime.timedelta:
    """The time span a duration string stands for.

        parse_duration("30s")   -> timedelta(seconds=30)
        parse_duration("1h30m") -> timedelta(hours=1, minutes=30)
        parse_duration("5 min") -> ValueError
    """
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    total = datetime.timedelta()
    for count, unit in _PART.findall(text):
        total += int(count) * _UNITS[unit]
    return total


def format_duration(span: datetime.timedelta) -> str:
    """The shortest duration string for a span, the inverse of `parse_duration`.

        format_duration(timedelta(seconds=90))       -> "1m30s"
        format_duration(timedelta(milliseconds=250)) -> "250ms"
        format_duration(timedelta())                 -> "0s"
    """
    if span < datetime.timedelta():
        raise ValueError(f"negative durations have no wire format: {span}")
    millis = span // datetime.timedelta(milliseconds=1)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    str,
    pydantic.StringConstraints(pattern=PATTERN, max_length=MAX_LENGTH),
]
"""A duration field: kept as the user wrote it, so status and spec round-trip unchanged."""
