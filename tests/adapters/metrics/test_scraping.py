"""The scrape interval, from the samples and from /api/v1/targets, and the step it gives."""

from __future__ import annotations

import datetime

import pytest

from modelrollout import errors
from modelrollout.adapters.metrics import scraping


def series(*stamps: float) -> dict[str, object]:
    return {"metric": {}, "values": [[t, "1"] for t in stamps]}


@pytest.mark.parametrize("answer, expected", [
    ([series(0, 15, 30, 45)], 15.0),
    ([series(0, 15, 45, 60, 75)], 15.0),                       # a missed scrape does not move the median
    ([series(0.012, 15.013, 29.998, 45.01)], 15.0),            # jitter of a few ms: whole seconds
    ([series(0, 30), series(7, 37, 67)], 30.0),                # two pods at different phases
    ([series(0, 0.5, 1.0)], 0.5),
    ([series(100)], None),                                     # one sample tells nothing
    ([], None),
])
def test_the_interval_is_the_median_spacing_of_raw_samples(answer: list[dict[str, object]],
                                                           expected: float | None) -> None:
    assert scraping.median_spacing(answer) == expected


def target(namespace: str, name: str, interval: str, timeout: str) -> dict[str, object]:
    return {"labels": {"namespace": namespace, "modeldeployment": name, "pod": "p"},
            "scrapeInterval": interval, "scrapeTimeout": timeout}


def test_the_targets_say_interval_and_timeout_of_this_modeldeployment_only() -> None:
    targets = [target("ml", "a", "15s", "10s"), target("ml", "b", "1m", "30s"), target("ml", "a", "15s", "12s")]
    assert scraping.configured(targets, "ml", "a") == (15.0, 12.0)
    assert scraping.configured(targets, "ml", "b") == (60.0, 30.0)
    assert scraping.configured(targets, "other", "a") is None


@pytest.mark.parametrize("text, seconds", [("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0),
                                           ("", None), ("15", None), ("1.5s", None)])
def test_prometheus_durations(text: str, seconds: float | None) -> None:
    assert scraping.parse_prometheus_duration(text) == seconds


@pytest.mark.parametrize("measured, said, expected", [
    (15.0, (15.0, 10.0), scraping.Scrape(15.0, 10.0, "samples and targets")),
    (16.0, (15.0, 10.0), scraping.Scrape(15.0, 10.0, "samples and targets")),  # the configured one is exact
    (30.0, (15.0, 10.0), scraping.Scrape(30.0, 10.0, "samples")),              # the data wins a disagreement
    (None, (60.0, 10.0), scraping.Scrape(60.0, 10.0, "targets")),
    (15.0, None, scraping.Scrape(15.0, None, "samples")),
    (None, None, None),
])
def test_samples_and_targets_combine(measured: float | None, said: tuple[float, float] | None,
                                     expected: scraping.Scrape | None) -> None:
    assert scraping.combine(measured, said) == expected


def test_an_interval_closes_a_timeout_and_an_interval_after_its_end() -> None:
    assert scraping.Scrape(15.0, 10.0).lag == 25.0
    assert scraping.Scrape(15.0).lag == 30.0  # no timeout known: the interval stands in for it


def test_the_step_is_the_scrape_interval_unless_a_longer_one_is_set() -> None:
    assert scraping.step(scraping.Scrape(15.0), None) == 15.0
    assert scraping.step(scraping.Scrape(15.0), datetime.timedelta(seconds=30)) == 30.0
    with pytest.raises(errors.MetricUnavailable) as refused:
        scraping.step(scraping.Scrape(30.0, source="targets"), datetime.timedelta(seconds=10))
    assert "10s" in str(refused.value) and "30s" in str(refused.value) and "MODELROLLOUT_SAMPLE_STEP" in str(
        refused.value)


def test_gauges_get_a_window_of_about_four_scrapes() -> None:
    assert scraping.Scrape(15.0).window(15.0) == "60s"
    assert scraping.Scrape(15.0).window(120.0) == "120s"
