"""Decisions reach every surface: the flag post is updated through its stored reference, the author told
as the server says, and each effect recorded before it runs and run once, whichever process runs its platform."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain import (
    Author,
    AuthorNotice,
    Case,
    CaseStatus,
    ConfirmNotice,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Message,
    ServerSettings,
    StrikeLadder,
    StrikeStep,
    utcnow,
)
from bot.effect_runner import carry_out_waiting
from bot.pipeline import new_case_id
from bot.platforms import PlatformCapabilities, PlatformCatalog, PlatformRouter
from bot.store.ports import PolicyContent
from bot.workflow import Actor, Appeals, Reviews
from tests.fakes.store import FakeStore
from tests.workflow.conftest import verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

SERVER = "g1"
MOD = Actor(id="mod-1", platform="console", server_id=SERVER, roles=("mods",))
AUTHOR = Actor(id="author-1", platform="console", server_id=SERVER)
FLAG_POST = "mod-channel/123"


class _Opinion:
    async def classify(self, request: object) -> object:
        return verdict(False)


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


async def configured(store: FakeStore, platform: str = "console", **changes: object) -> None:
    settings = ServerSettings(platform=platform, server_id=SERVER, moderator_role_ids=("mods",))
    await store.settings.put(settings.model_copy(update=changes), utcnow())
    await store.policies.add_version(platform, SERVER, PolicyContent(name="harassment", text="t"), "setup")


async def flagged_case(store: FakeStore, platform: str = "console", *, policy: str = "harassment") -> Case:
    msg = Message(
        platform=platform,
        server_id=SERVER,
        channel_id="general",
        message_id=new_case_id(),
        author=Author(id=AUTHOR.id),
        text="you are an idiot",
    )
    queue_id = await store.enqueue(msg)
    assert queue_id is not None
    case = Case(id=new_case_id(), message=msg, status=CaseStatus.OPEN, verdicts=(verdict(policy=policy),))
    await store.record_decision(queue_id, case, [(Effect(kind=EffectKind.FLAG, policy=policy), EffectOutcome.DONE)])
    await store.effects.set_outcome(case.id, 1, EffectOutcome.DONE, reference=FLAG_POST)
    found = await store.cases.get(case.id)
    assert found is not None
    return found


class ContextSink(FakeSink):
    """Keeps the context each effect was carried out with."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[EffectContext] = []

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.contexts.append(context)
        return await super().execute(effect, context)


async def test_a_confirmation_updates_the_flag_post_through_its_reference(store: FakeStore) -> None:
    await configured(store)
    case = await flagged_case(store)
    sink = ContextSink()
    outcome = await Reviews(store, {"console": sink}).confirm(case.id, MOD, note="clear insult")
    assert sink.kinds() == [EffectKind.UPDATE_FLAG]  # a bare confirmation tells the author nothing by default
    (update, decided) = sink.executed[0]
    assert (update.requested_by, update.reason) == ("mod-1", "clear insult")
    context = sink.contexts[0]
    assert context.flag_reference == FLAG_POST
    assert (decided.status, decided.decided_by) == (CaseStatus.CONFIRMED, "mod-1")
    assert context.settings.moderator_role_ids == ("mods",) and context.policy("harassment") is not None
    assert [(r.effect.kind, r.outcome) for r in outcome.effects] == [(EffectKind.UPDATE_FLAG, EffectOutcome.DONE)]


async def test_a_case_never_posted_has_no_flag_to_update(store: FakeStore, sink: FakeSink) -> None:
    await configured(store)
    msg = Message(platform="console", server_id=SERVER, channel_id="c", message_id="m", author=Author(id=AUTHOR.id))
    queue_id = await store.enqueue(msg)
    assert queue_id is not None
    case = Case(id=new_case_id(), message=msg, status=CaseStatus.OPEN, verdicts=(verdict(),))
    # The flag post failed: no reference was stored, so there is nothing to edit.
    await store.record_decision(queue_id, case, [(Effect(kind=EffectKind.FLAG), EffectOutcome.FAILED)])
    await Reviews(store, {"console": sink}).dismiss(case.id, MOD)
    assert sink.executed == []


async def test_appeal_decisions_update_the_flag_and_tell_the_author(store: FakeStore) -> None:
    await configured(store)
    case = await flagged_case(store)
    sink = ContextSink()
    appeals = Appeals(store, _Opinion(), {"console": sink}, FakeModChannel())  # type: ignore[arg-type]
    await appeals.file(case.id, AUTHOR, "it was a quote")
    await appeals.overturn(case.id, MOD, note="a quote")
    assert sink.kinds() == [EffectKind.UPDATE_FLAG, EffectKind.NOTIFY_APPEAL_OUTCOME]
    assert sink.contexts[0].flag_reference == FLAG_POST
    assert sink.contexts[0].case.status is CaseStatus.OVERTURNED


@pytest.mark.parametrize(
    ("setting", "delete", "told"),
    [
        (ConfirmNotice.NEVER, True, False),
        (ConfirmNotice.WITH_ACTION, False, False),
        (ConfirmNotice.WITH_ACTION, True, True),
        (ConfirmNotice.ALWAYS, False, True),
    ],
)
async def test_the_author_is_told_of_a_confirmation_as_the_server_says(
    store: FakeStore, sink: FakeSink, setting: ConfirmNotice, delete: bool, told: bool
) -> None:
    await configured(store, notify_author_on_confirm=setting)
    case = await flagged_case(store)
    await Reviews(store, {"console": sink}).confirm(case.id, MOD, delete=delete)
    assert (EffectKind.NOTIFY_AUTHOR in sink.kinds()) is told
    if told:
        notice = next(e for e, _ in sink.executed if e.kind is EffectKind.NOTIFY_AUTHOR)
        assert (notice.policy, notice.rule_ids) == ("harassment", ("HB1.a",))


async def test_an_author_already_told_is_not_told_twice(store: FakeStore, sink: FakeSink) -> None:
    await configured(store, notify_author_on_confirm=ConfirmNotice.ALWAYS)
    case = await flagged_case(store)
    await store.effects.add_intents(case.id, [Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="harassment")])
    await store.effects.set_outcome(case.id, 2, EffectOutcome.DONE)
    await Reviews(store, {"console": sink}).confirm(case.id, MOD, delete=True)
    assert sink.kinds() == [EffectKind.DELETE, EffectKind.UPDATE_FLAG]


async def test_a_support_case_is_never_a_strike(store: FakeStore, sink: FakeSink) -> None:
    ladder = StrikeLadder(enabled=True, steps=(StrikeStep(strikes=2, timeout_minutes=60),))
    await configured(store, strike_ladder=ladder, notify_author_on_confirm=ConfirmNotice.NEVER)
    support = PolicyContent(name="self-harm", text="t", author_notice=AuthorNotice.SUPPORT, notice_text="We care.")
    await store.policies.add_version("console", SERVER, support, "setup")
    reviews = Reviews(store, {"console": sink})
    first = await flagged_case(store)
    assert (await reviews.confirm(first.id, MOD)).strikes == 1
    for _ in range(3):
        cry_for_help = await flagged_case(store, policy="self-harm")
        assert (await reviews.confirm(cry_for_help.id, MOD)).strikes is None
    assert EffectKind.TIMEOUT not in sink.kinds()
    second = await flagged_case(store)
    assert (await reviews.confirm(second.id, MOD)).strikes == 2  # the support cases never counted
    assert EffectKind.TIMEOUT in sink.kinds()


async def test_effects_of_a_platform_running_elsewhere_wait_for_it_and_run_there_once(store: FakeStore) -> None:
    await configured(store, platform="discord")
    case = await flagged_case(store, platform="discord")
    declared = PlatformCapabilities(platform="discord", effects=frozenset(EffectKind), configured=frozenset(EffectKind))
    catalog = PlatformCatalog([declared])
    # The CLI: no Discord adapter in this process. The decision is recorded, its effects wait.
    cli = PlatformRouter({"console": FakeSink()}, catalog)
    moderator = MOD.model_copy(update={"platform": "discord"})
    outcome = await Reviews(store, cli).confirm(case.id, moderator, delete=True)
    assert [(r.effect.kind, r.outcome) for r in outcome.effects] == [
        (EffectKind.DELETE, EffectOutcome.PENDING),
        (EffectKind.UPDATE_FLAG, EffectOutcome.PENDING),
        (EffectKind.NOTIFY_AUTHOR, EffectOutcome.PENDING),
    ]
    assert "waits for the discord adapter" in outcome.effects[0].detail
    # The bot that runs Discord picks them up; two passes at once still run each effect once.
    discord = FakeSink(platform="discord")
    bot = PlatformRouter({"discord": discord}, catalog)
    ran = await asyncio.gather(carry_out_waiting(store, bot), carry_out_waiting(store, bot))
    assert sum(ran) == 3
    assert discord.kinds() == [EffectKind.DELETE, EffectKind.UPDATE_FLAG, EffectKind.NOTIFY_AUTHOR]
    stored = await store.cases.get(case.id)
    assert stored is not None and {r.outcome for r in stored.effects} == {EffectOutcome.DONE}
    assert await carry_out_waiting(store, bot) == 0
