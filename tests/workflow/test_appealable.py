"""`Appeals.appealable`: the cases a member may appeal with `/appeal`: their own, and only those they know of."""

from __future__ import annotations

import pytest

from bot.domain import (
    Author,
    AuthorNotice,
    Case,
    CaseStatus,
    Effect,
    EffectKind,
    EffectOutcome,
    Message,
    Verdict,
)
from bot.pipeline import new_case_id
from bot.store.ports import PolicyContent
from bot.workflow import Actor, Appeals, NotAuthorised
from tests.fakes.store import FakeStore
from tests.workflow.conftest import verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

SERVER = "guild-a"
MEMBER = Actor(id="member-1", platform="discord", server_id=SERVER)


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


async def case_with(
    store: FakeStore,
    *effects: tuple[EffectKind, EffectOutcome],
    author: str = MEMBER.id,
    server: str = SERVER,
    status: CaseStatus = CaseStatus.OPEN,
    verdicts: tuple[Verdict, ...] | None = None,
) -> Case:
    msg = Message(
        platform="discord",
        server_id=server,
        channel_id="general",
        message_id=new_case_id(),
        author=Author(id=author),
        text="you are an idiot",
    )
    queue_id = await store.enqueue(msg)
    assert queue_id is not None
    case = Case(id=new_case_id(), message=msg, status=status, verdicts=verdicts or (verdict(),), created_at=store.now())
    await store.record_decision(queue_id, case, [(Effect(kind=kind), outcome) for kind, outcome in effects])
    return case


def appeals(store: FakeStore, sink: FakeSink) -> Appeals:
    return Appeals(store, None, {"discord": sink}, FakeModChannel())  # type: ignore[arg-type]


async def test_a_member_sees_their_own_cases_they_were_told_of_or_acted_on_newest_first(
    store: FakeStore, sink: FakeSink, clock: FakeClock
) -> None:
    told = await case_with(store, (EffectKind.FLAG, EffectOutcome.DONE), (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE))
    clock.advance(seconds=60)
    dms_closed = await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.FAILED))
    clock.advance(seconds=60)
    deleted = await case_with(store, (EffectKind.DELETE, EffectOutcome.DONE), status=CaseStatus.CONFIRMED)
    # Left out: a flag nobody acted on, a shadow notice, a failed deletion, someone else's
    # case, another server's, one already appealed, one dismissed.
    await case_with(store, (EffectKind.FLAG, EffectOutcome.DONE))
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.SHADOW))
    await case_with(store, (EffectKind.DELETE, EffectOutcome.FAILED))
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE), author="member-2")
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE), server="guild-b")
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE), status=CaseStatus.APPEALED)
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE), status=CaseStatus.DISMISSED)

    found = await appeals(store, sink).appealable(MEMBER)

    assert [c.id for c in found] == [deleted.id, dms_closed.id, told.id]


async def test_a_case_flagged_only_for_support_is_not_offered_for_appeal(store: FakeStore, sink: FakeSink) -> None:
    support = PolicyContent(name="self-harm", text="t", author_notice=AuthorNotice.SUPPORT, notice_text="We care.")
    await store.policies.add_version("discord", SERVER, support, "admin")
    await store.policies.add_version("discord", SERVER, PolicyContent(name="harassment", text="t"), "admin")
    await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE), verdicts=(verdict(policy="self-harm"),))
    both = await case_with(
        store,
        (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE),
        verdicts=(verdict(policy="self-harm"), verdict(policy="harassment")),
    )

    assert [c.id for c in await appeals(store, sink).appealable(MEMBER)] == [both.id]


async def test_the_list_needs_a_server_and_is_capped(store: FakeStore, sink: FakeSink, clock: FakeClock) -> None:
    for _ in range(4):
        await case_with(store, (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE))
        clock.advance(seconds=1)
    service = appeals(store, sink)
    assert len(await service.appealable(MEMBER, limit=3)) == 3
    with pytest.raises(NotAuthorised, match="outside any server"):
        await service.appealable(MEMBER.model_copy(update={"server_id": None}))
