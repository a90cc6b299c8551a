"""The data-quality gate: unusable intervals are dropped, and too little data is never a verdict."""

import math

import pytest

from modelrollout.core.analysis import quality, samples, settings

NAN = math.nan


@pytest.mark.parametrize(
    "interval, usable",
    [
        ((100, 1, 10, 0), True),
        ((NAN, 1, 10, 0), False),  # missing scrape
        ((100, -1, 10, 0), False),  # counter reset the adapter could not repair
        ((100, 1, 10, 11), False),  # more errors than requests
        ((0, 0, 0, 0), True),  # no traffic is usable, and carries no information
    ],
)
def test_counts_drop_unusable_intervals_whole(interval, usable):
    series = samples.CountSamples("e", (samples.CountInterval(*interval, end=60.0),))
    cleaned = quality.counts(series)
    assert cleaned.window.intervals == int(usable)
    assert cleaned.window.dropped == int(not usable)
    if not usable:
        assert cleaned.stable_requests[0] == cleaned.canary_events[0] == 0.0


def test_histograms_drop_an_interval_when_either_track_is_bad():
    bounds = (1.0, math.inf)
    series = samples.HistogramSamples("h", bounds, (
        samples.HistogramInterval((1.0, 2.0), (1.0, NAN), end=10.0),
        samples.HistogramInterval((1.0, 2.0), (1.0, 1.0), end=20.0),
    ))
    cleaned = quality.histograms(series)
    assert (cleaned.window.intervals, cleaned.window.dropped) == (1, 1)
    assert (cleaned.window.start, cleaned.window.end) == (20.0, 20.0)
    assert cleaned.canary[0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "stable, canary, events, config, expected",
    [
        (500, 40, 3, settings.DEFAULT, "canary has 40 requests, needs 100"),
        (50, 400, 3, settings.DEFAULT, "stable has 50 requests, needs 100"),
        (500, 400, 3, settings.DEFAULT, None),
        (500, 400, 3, settings.AnalysisSettings(min_events=10), "3 events in both tracks, needs 10"),
    ],
)
def test_shortfall(stable, canary, events, config, expected):
    assert quality.shortfall(stable, canary, events, config) == expected


@pytest.mark.parametrize(
    "field, value",
    [("alpha", 0.0), ("alpha", 1.0), ("min_requests", -1.0), ("consecutive_error_limit", -1)],
)
def test_settings_reject_impossible_values(field, value):
    with pytest.raises(ValueError):
        settings.AnalysisSettings(**{field: value})
