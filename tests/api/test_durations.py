"""Durations: the wire format shared by pydantic, CEL and people."""

import datetime

import hypothesis
import hypothesis.strategies as st
import pydantic
import pytest

from modelrollout.api import durations


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0s", datetime.timedelta()),
        ("250ms", datetime.timedelta(milliseconds=250)),
        ("30s", datetime.timedelta(seconds=30)),
        ("5m", datetime.timedelta(minutes=5)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("1h1m1s1ms", datetime.timedelta(hours=1, minutes=1, seconds=1, milliseconds=1)),
        ("90s", datetime.timedelta(seconds=90)),
    ],
)
def test_parse(text: str, expected: datetime.timedelta) -> None:
    assert durations.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 m", "1d", "1.5h", "-5s", "5min", "s", "1h 30m", "PT5M"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        durations.parse_duration(text)


@pytest.mark.parametrize(
    "span, expected",
    [
        (datetime.timedelta(), "0s"),
        (datetime.timedelta(seconds=90), "1m30s"),
        (datetime.timedelta(milliseconds=250), "250ms"),
        (datetime.timedelta(hours=2), "2h"),
    ],
)
def test_format(span: datetime.timedelta, expected: str) -> None:
    assert durations.format_duration(span) == expected


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError):
        durations.format_duration(datetime.timedelta(seconds=-1))


@hypothesis.given(st.integers(min_value=0, max_value=10**10))
def test_format_then_parse_is_identity(millis: int) -> None:
    span = datetime.timedelta(milliseconds=millis)
    assert durations.parse_duration(durations.format_duration(span)) == span


class _Holder(pydantic.BaseModel):
    every: durations.Duration


def test_duration_field_keeps_text_and_refuses_garbage() -> None:
    assert _Holder(every="1h30m").every == "1h30m"
    with pytest.raises(pydantic.ValidationError):
        _Holder(every="soon")
