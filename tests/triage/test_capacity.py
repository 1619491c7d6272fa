"""The capacity model: learned speed, demand, and the drain time, on a virtual clock."""

from __future__ import annotations

import math

import pytest

from bot.domain import Effort
from bot.triage.capacity import DEFAULT_SECONDS_PER_CALL, CapacityModel, describe_drain


def test_before_any_measurement_the_priors_are_used_and_the_first_measurement_replaces_them() -> None:
    model = CapacityModel(slots=2)
    assert model.seconds_per_call(Effort.MEDIUM) == DEFAULT_SECONDS_PER_CALL[Effort.MEDIUM]
    model.record_call(Effort.MEDIUM, 3.0)
    assert model.seconds_per_call(Effort.MEDIUM) == 3.0
    assert model.seconds_per_call(Effort.LOW) == DEFAULT_SECONDS_PER_CALL[Effort.LOW]


def test_seconds_per_call_is_an_exponentially_weighted_mean_per_effort() -> None:
    model = CapacityModel(slots=2, smoothing=0.5)
    model.record_call(Effort.LOW, 1.0)
    model.record_call(Effort.LOW, 3.0)
    assert model.seconds_per_call(Effort.LOW) == 2.0
    model.record_call(Effort.LOW, 2.0)
    assert model.seconds_per_call(Effort.LOW) == 2.0
    for _ in range(30):
        model.record_call(Effort.LOW, 0.5)
    assert model.seconds_per_call(Effort.LOW) == pytest.approx(0.5, abs=1e-6)
    assert model.snapshot({}, 0.0).measured_calls[Effort.LOW] == 33


def test_a_call_time_that_cannot_be_is_refused() -> None:
    model = CapacityModel(slots=1)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="a call cannot take"):
            model.record_call(Effort.LOW, bad)


def test_without_demand_the_drain_time_is_the_backlogs_work_over_the_slots() -> None:
    model = CapacityModel(slots=2)
    model.record_call(Effort.LOW, 1.5)
    # 600 messages x 8 policies x 1.5 s over 2 slots.
    assert model.drain_seconds({Effort.LOW: 600 * 8}, now=0.0) == pytest.approx(3600.0)
    assert model.drain_seconds({}, now=0.0) == 0.0


def test_demand_is_a_decaying_rate_that_settles_on_the_arrival_rate() -> None:
    model = CapacityModel(slots=2, demand_window_seconds=60.0)
    model.record_call(Effort.LOW, 0.1)
    for second in range(600):  # one message a second, one call each
        model.record_demand(float(second), {Effort.LOW: 1})
    rate = model.demand_calls_per_second(600.0)[Effort.LOW]
    assert rate == pytest.approx(1.0, rel=0.02)
    assert model.utilisation(600.0) == pytest.approx(0.05, rel=0.02)
    # Once arrivals stop, the rate falls by e every window.
    assert model.demand_calls_per_second(660.0)[Effort.LOW] == pytest.approx(rate / math.e, rel=1e-6)


def test_with_demand_the_drain_time_counts_the_work_still_arriving() -> None:
    model = CapacityModel(slots=2, demand_window_seconds=60.0)
    model.record_call(Effort.LOW, 1.0)
    for second in range(600):
        model.record_demand(float(second), {Effort.LOW: 1})  # half of the two slots
    utilisation = model.utilisation(600.0)
    expected = 100 * 1.0 / 2 / (1 - utilisation)
    assert model.drain_seconds({Effort.LOW: 100}, 600.0) == pytest.approx(expected)
    assert expected == pytest.approx(100.0, rel=0.05)


def test_when_work_arrives_faster_than_the_slots_serve_it_the_backlog_never_drains() -> None:
    model = CapacityModel(slots=2, demand_window_seconds=60.0)
    model.record_call(Effort.LOW, 1.5)
    for second in range(600):
        model.record_demand(float(second), {Effort.LOW: 8})  # 8 policies per message, 1 msg/s
    assert model.utilisation(600.0) > 1
    assert model.drain_seconds({Effort.LOW: 10}, 600.0) == math.inf
    snapshot = model.snapshot({Effort.LOW: 10}, 600.0)
    assert snapshot.drain_seconds == math.inf and snapshot.backlog_work_seconds == 15.0


def test_efforts_are_weighed_by_their_own_speed() -> None:
    model = CapacityModel(slots=1)
    model.record_call(Effort.LOW, 1.0)
    model.record_call(Effort.HIGH, 5.0)
    assert model.work_seconds({Effort.LOW: 10, Effort.HIGH: 2}) == 20.0


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"slots": 0}, "at least one slot"),
        ({"slots": 1, "smoothing": 0}, "smoothing"),
        ({"slots": 1, "demand_window_seconds": 0}, "demand window"),
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CapacityModel(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.0, "no backlog"), (42.4, "about 42 s"), (600.0, "about 10 min"), (7200.0, "about 2.0 h")],
)
def test_drain_times_read_as_people_say_them(seconds: float, words: str) -> None:
    assert describe_drain(seconds) == words
    assert describe_drain(math.inf).startswith("never at the current rate")
