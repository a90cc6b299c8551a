"""The A/B bench in seconds: a few simulated tests per cell say what the full bench says."""

from __future__ import annotations

from bench import ab_test


def _cell(label: str) -> ab_test.Cell:
    return next(cell for cell in ab_test.cells() if cell.label == label)


def test_equal_rates_give_no_false_win_in_a_few_tests() -> None:
    row = ab_test.run_cell(_cell("A/A"), runs=12, seed=3)
    assert row["win"] == 0 and row["met"] is True
    assert row["undecided"] + row["loss"] == 12


def test_a_one_and_a_half_times_better_challenger_wins_within_the_duration() -> None:
    row = ab_test.run_cell(_cell("1.5x better"), runs=8, seed=4)
    assert row["win"] >= 7, row
    assert row["median_win_s"] is not None and row["median_win_s"] < ab_test.DURATION_S


def test_the_table_names_each_cell_and_its_verdict() -> None:
    rows = [ab_test.run_cell(_cell("A/A"), runs=2, seed=5)]
    assert "A/A" in ab_test.table(rows) and "false wins <= 0.01: met" in ab_test.table(rows)
