"""Shedding: hysteresis, one notice each way, and what it does to each kind of work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.domain import Effort
from bot.triage.config import TriageMode
from bot.triage.shedding import (
    JudgingPlan,
    LoadShedder,
    SheddingConfig,
    SheddingRecovered,
    SheddingStarted,
    ShedMode,
    WorkKind,
    plan_judging,
)

CONFIG = SheddingConfig(start_above_seconds=120, stop_below_seconds=30, recover_after_seconds=60)
A = ("discord", "g1")
B = ("slack", "T1")


def run(shedder: LoadShedder, trace: list[tuple[float, float]]) -> list[object]:
    return [e for now, drain in trace if (e := shedder.observe(now, drain)) is not None]


def test_shedding_starts_above_the_threshold_and_recovers_once_below_the_lower_one_for_long_enough() -> None:
    shedder = LoadShedder(CONFIG)
    events = run(shedder, [(0, 10), (10, 121), (20, 500), (30, 100), (40, 29), (60, 20), (99, 5), (100, 5)])
    assert events == [
        SheddingStarted(at=10, drain_seconds=121, threshold_seconds=120),
        SheddingRecovered(at=100, drain_seconds=5, lasted_seconds=90, servers=()),
    ]
    assert not shedder.active


def test_an_estimate_hovering_between_the_thresholds_does_not_flap() -> None:
    shedder = LoadShedder(CONFIG)
    trace = [(float(t), 125.0 if t % 2 else 115.0) for t in range(100)]
    events = run(shedder, trace)
    assert len(events) == 1 and isinstance(events[0], SheddingStarted)
    # Dipping below the stop threshold, but not for long enough, does not end the episode.
    events = run(shedder, [(200, 20), (230, 20), (240, 40), (250, 20), (300, 20)])
    assert events == []
    assert shedder.active
    (recovered,) = run(shedder, [(310, 20)])
    assert isinstance(recovered, SheddingRecovered) and recovered.lasted_seconds == 309


def test_an_infinite_drain_time_sheds_and_never_recovers_while_it_lasts() -> None:
    shedder = LoadShedder(CONFIG)
    events = run(shedder, [(float(t), float("inf")) for t in range(0, 1000, 10)])
    assert len(events) == 1 and shedder.active


def test_each_server_is_told_once_per_episode_and_gets_the_all_clear() -> None:
    shedder = LoadShedder(CONFIG)
    assert shedder.note_shed(A) is False  # not shedding: nothing to tell
    shedder.observe(0, 500)
    assert shedder.note_shed(A) is True
    assert shedder.note_shed(A) is False
    assert shedder.note_shed(B) is True
    shedder.observe(10, 10)
    recovered = shedder.observe(70, 10)
    assert isinstance(recovered, SheddingRecovered) and recovered.servers == (A, B)
    # A new episode tells them again.
    shedder.observe(100, 500)
    assert shedder.note_shed(A) is True


def test_disabled_shedding_never_starts_and_disabling_it_ends_an_episode_at_once() -> None:
    off = LoadShedder(SheddingConfig(enabled=False))
    assert run(off, [(0, 1e9), (1, float("inf"))]) == []
    shedder = LoadShedder(CONFIG)
    shedder.observe(0, 500)
    shedder.note_shed(A)
    shedder.config = SheddingConfig(enabled=False)
    recovered = shedder.observe(5, 500)
    assert isinstance(recovered, SheddingRecovered) and recovered.servers == (A,)


def test_the_stop_threshold_must_be_below_the_start_threshold() -> None:
    with pytest.raises(ValidationError, match="must stop below a lower drain time than it starts above"):
        SheddingConfig(start_above_seconds=60, stop_below_seconds=60)
    with pytest.raises(ValidationError):
        SheddingConfig(colour="red")  # type: ignore[call-arg]


# ---------------------------------------------------------------- plans


@pytest.mark.parametrize("kind", [WorkKind.APPEAL, WorkKind.REPORT, WorkKind.PREVIEW])
@pytest.mark.parametrize("mode", list(ShedMode))
def test_interactive_work_keeps_its_effort_and_is_never_screened_under_shedding(kind: WorkKind, mode: ShedMode) -> None:
    plan = plan_judging(kind, triage=TriageMode.SCREEN, effort=Effort.HIGH, shedding=True, mode=mode)
    assert plan == JudgingPlan(TriageMode.OFF, Effort.HIGH, shed=False)


def test_without_shedding_chat_follows_the_servers_settings() -> None:
    plan = plan_judging(WorkKind.CHAT, triage=TriageMode.OFF, effort=Effort.MEDIUM, shedding=False)
    assert plan == JudgingPlan(TriageMode.OFF, Effort.MEDIUM, shed=False)


@pytest.mark.parametrize(
    ("mode", "triage", "effort", "expected"),
    [
        (ShedMode.SCREEN, TriageMode.OFF, Effort.MEDIUM, JudgingPlan(TriageMode.SCREEN, Effort.MEDIUM, shed=True)),
        (ShedMode.SCREEN, TriageMode.SCREEN, Effort.MEDIUM, JudgingPlan(TriageMode.SCREEN, Effort.MEDIUM, shed=False)),
        (ShedMode.LOW_EFFORT, TriageMode.OFF, Effort.HIGH, JudgingPlan(TriageMode.OFF, Effort.LOW, shed=True)),
        (ShedMode.LOW_EFFORT, TriageMode.OFF, Effort.LOW, JudgingPlan(TriageMode.OFF, Effort.LOW, shed=False)),
        (
            ShedMode.SCREEN_AND_LOW_EFFORT,
            TriageMode.OFF,
            Effort.MEDIUM,
            JudgingPlan(TriageMode.SCREEN, Effort.LOW, shed=True),
        ),
    ],
)
def test_shedding_moves_chat_to_the_screen_or_low_effort_and_says_whether_it_changed_anything(
    mode: ShedMode, triage: TriageMode, effort: Effort, expected: JudgingPlan
) -> None:
    assert plan_judging(WorkKind.CHAT, triage=triage, effort=effort, shedding=True, mode=mode) == expected
