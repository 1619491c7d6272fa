"""The strike ladder: off by default; N confirmed violations within the window bring a stronger effect."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.domain import Case, CaseStatus, EffectKind, EffectOutcome, Mode, ServerSettings, StrikeLadder, StrikeStep
from bot.store.sqlite import SqliteStore
from bot.workflow import Appeals, Reviews, step_for
from tests.workflow.conftest import AUTHOR, AUTHOR_ACTOR, MOD, configure, seed_case
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

LADDER = StrikeLadder(
    enabled=True,
    window_days=30,
    steps=(StrikeStep(strikes=3, timeout_minutes=1440), StrikeStep(strikes=2, timeout_minutes=60)),
)


def test_the_ladder_is_off_by_default() -> None:
    settings = ServerSettings(platform="console", server_id="g")
    assert settings.strike_ladder.enabled is False
    assert step_for(settings.strike_ladder, 99) is None


def test_the_highest_step_reached_applies() -> None:
    assert [s.strikes for s in LADDER.steps] == [2, 3]  # kept in order
    assert step_for(LADDER, 1) is None
    assert step_for(LADDER, 2) == StrikeStep(strikes=2, timeout_minutes=60)
    assert step_for(LADDER, 3) == StrikeStep(strikes=3, timeout_minutes=1440)
    assert step_for(LADDER, 7) == StrikeStep(strikes=3, timeout_minutes=1440)
    assert step_for(LADDER.model_copy(update={"enabled": False}), 7) is None


def test_a_ladder_is_validated() -> None:
    with pytest.raises(ValidationError, match="share the same number of strikes"):
        StrikeLadder(steps=(StrikeStep(strikes=2), StrikeStep(strikes=2)))
    with pytest.raises(ValidationError, match="a strike step's effects must be some of"):
        StrikeStep(strikes=2, effects=(EffectKind.LIFT_TIMEOUT,))


async def confirm_n(
    store: SqliteStore, sink: FakeSink, clock: FakeClock, n: int, author: str = AUTHOR
) -> list[int | None]:
    reviews = Reviews(store, {"console": sink}, clock)
    strikes = []
    for _ in range(n):
        case = await seed_case(store, author=author)
        strikes.append((await reviews.confirm(case.id, MOD)).strikes)
        clock.advance(days=1)
    return strikes


async def test_repeat_violations_escalate(wstore: SqliteStore, sink: FakeSink, clock: FakeClock) -> None:
    await configure(wstore, strike_ladder=LADDER)
    assert await confirm_n(wstore, sink, clock, 3) == [1, 2, 3]
    timeouts = [(e.timeout_minutes, e.reason) for e, _ in sink.executed if e.kind is EffectKind.TIMEOUT]
    assert timeouts == [
        (60, "strike 2 within 30 days (ladder step from 2 strikes)"),
        (1440, "strike 3 within 30 days (ladder step from 3 strikes)"),
    ]
    # Each timed-out author is told why, once per confirmation that acted (notify_author_on_confirm).
    assert sink.kinds() == [EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR] * 2
    assert all(c.message.author.id == AUTHOR for _, c in sink.executed)


async def test_without_a_ladder_nothing_escalates(wstore: SqliteStore, sink: FakeSink, clock: FakeClock) -> None:
    await configure(wstore)
    assert await confirm_n(wstore, sink, clock, 4) == [None] * 4
    assert sink.executed == []


async def test_only_confirmed_violations_within_the_window_count(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore, strike_ladder=LADDER)
    reviews = Reviews(wstore, {"console": sink}, clock)
    old = await seed_case(wstore)
    await reviews.confirm(old.id, MOD)
    clock.advance(days=31)  # outside the window now
    dismissed = await seed_case(wstore)
    await reviews.dismiss(dismissed.id, MOD)
    await seed_case(wstore)  # open, never confirmed
    await confirm_n(wstore, sink, clock, 1, author="someone-else")
    latest = await seed_case(wstore)
    outcome = await reviews.confirm(latest.id, MOD)
    assert outcome.strikes == 1
    assert sink.executed == []


async def test_the_longer_timeout_wins_when_the_moderator_asks_for_one_too(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore, strike_ladder=LADDER)
    await confirm_n(wstore, sink, clock, 2)
    sink.executed.clear()
    case = await seed_case(wstore)
    outcome = await Reviews(wstore, {"console": sink}, clock).confirm(case.id, MOD, timeout_minutes=30, delete=True)
    assert sink.kinds() == [EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR]
    timeout = sink.executed[1][0]
    assert timeout.timeout_minutes == 1440
    assert timeout.requested_by == "mod-1"
    assert outcome.strikes == 3


async def test_in_shadow_mode_the_ladder_is_recorded_not_carried_out(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore, strike_ladder=LADDER, mode=Mode.SHADOW)
    await confirm_n(wstore, sink, clock, 2)
    assert sink.executed == []
    rows = await wstore.fetchall("SELECT kind, outcome FROM effects WHERE kind = 'timeout'")
    assert [(r[0], r[1]) for r in rows] == [("timeout", EffectOutcome.SHADOW.value)]


async def test_an_upheld_appeal_on_an_unreviewed_case_is_a_strike_an_overturned_one_is_not(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock, channel: FakeModChannel
) -> None:
    await configure(wstore, strike_ladder=LADDER)
    await confirm_n(wstore, sink, clock, 1)
    appeals = Appeals(wstore, _NoCall(), {"console": sink}, channel, clock)
    case = await purged(wstore, await seed_case(wstore))  # no retained text: no second opinion
    await appeals.file(case.id, AUTHOR_ACTOR, "please")
    outcome = await appeals.uphold(case.id, MOD)
    assert outcome.strikes == 2
    assert sink.kinds() == [EffectKind.TIMEOUT, EffectKind.NOTIFY_APPEAL_OUTCOME]
    # An overturned case stops counting.
    third = await purged(wstore, await seed_case(wstore))
    await appeals.file(third.id, AUTHOR_ACTOR, "please")
    await appeals.overturn(third.id, MOD)
    fourth = await seed_case(wstore)
    assert (await Reviews(wstore, {"console": sink}, clock).confirm(fourth.id, MOD)).strikes == 3
    assert (await wstore.cases.get(third.id)).status is CaseStatus.OVERTURNED  # type: ignore[union-attr]
    assert appeals.classifier.calls == 0  # type: ignore[attr-defined]


async def test_an_upheld_appeal_on_a_confirmed_case_is_not_a_second_strike(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock, channel: FakeModChannel
) -> None:
    await configure(wstore, strike_ladder=LADDER)
    await confirm_n(wstore, sink, clock, 2)
    appeals = Appeals(wstore, _NoCall(), {"console": sink}, channel, clock)
    last = (await wstore.fetchall("SELECT id FROM cases ORDER BY rowid DESC LIMIT 1"))[0][0]
    await purged(wstore, await wstore.cases.get(last))  # type: ignore[arg-type]
    await appeals.file(last, AUTHOR_ACTOR, "please")
    sink.executed.clear()
    outcome = await appeals.uphold(last, MOD)
    assert outcome.strikes is None
    assert sink.kinds() == [EffectKind.NOTIFY_APPEAL_OUTCOME]
    assert appeals.classifier.calls == 0  # type: ignore[attr-defined]


class _NoCall:
    """A purged message cannot be judged again: the appeal must not reach the model."""

    calls = 0

    async def classify(self, request: object) -> object:
        self.calls += 1
        raise AssertionError("the model must not be called")


async def purged(store: SqliteStore, case: Case) -> Case:
    async with store.raw_transaction() as conn:
        await conn.execute(
            "UPDATE cases SET text = NULL, text_purged_at = ? WHERE id = ?", (store.now().isoformat(), case.id)
        )
    return case
