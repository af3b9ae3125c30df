"""The speed benchmark's bookkeeping: the rotated order of the ways and the ratio table.

The timings themselves are the benchmark's business (benchmarks/train_speed.py); these
check, without TensorFlow, that every way leads a round in turn and that each ratio is
taken within its round, so that a machine slowing down between rounds cancels.
"""

from __future__ import annotations

import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def train_speed():
    return benchmark_module("train_speed")


def test_each_way_leads_one_round_in_turn(train_speed):
    ways = ["tf", "trainer", "plain", "plain-kept"]
    orders = [train_speed.rotated(ways, round_) for round_ in range(5)]
    assert orders[:4] == [
        ["tf", "trainer", "plain", "plain-kept"],
        ["trainer", "plain", "plain-kept", "tf"],
        ["plain", "plain-kept", "tf", "trainer"],
        ["plain-kept", "tf", "trainer", "plain"],
    ]
    assert orders[4] == orders[0]


def test_ratios_are_taken_within_each_round(train_speed):
    # the ratio of the medians would say 2x TF and 1.33x plain for the trainer
    rates = [
        {"tf": 100.0, "trainer": 200.0, "plain": 150.0},
        {"tf": 50.0, "trainer": 200.0, "plain": 75.0},
        {"tf": 120.0, "trainer": 360.0, "plain": 160.0},
    ]
    table = train_speed.summary(rates)
    assert list(table.columns) == ["rate", "vs tf", "vs plain"]
    assert list(table.index) == ["tf", "trainer", "plain"]
    assert table.loc["trainer", "rate"] == 200.0  # median over rounds
    assert table.loc["trainer", "vs tf"] == 3.0  # median of 2, 4, 3
    assert table.loc["trainer", "vs plain"] == 2.25  # median of 1.33, 2.67, 2.25
    assert table.loc["tf", "vs tf"] == 1.0
    assert table.loc["plain", "vs plain"] == 1.0


def test_without_tf_the_plain_loop_is_the_only_reference(train_speed):
    table = train_speed.summary([{"trainer": 300.0, "plain": 150.0}])
    assert list(table.columns) == ["rate", "vs plain"]
    assert table.loc["trainer", "vs plain"] == 2.0
