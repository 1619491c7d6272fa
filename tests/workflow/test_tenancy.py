"""Tenancy: an actor acts in one server; the core refuses another server's cases, appeals, policies and settings.

Service tests over the in-memory store (tests/fakes/store.py). Before the actor named its
server, each of these passed for an admin of any server.
"""

from __future__ import annotations

import pytest

from bot.domain import Author, Case, CaseStatus, Message, ServerSettings, Verdict, utcnow
from bot.pipeline import new_case_id
from bot.store.ports import PolicyContent
from bot.workflow import (
    Actor,
    Appeals,
    Labels,
    NotAuthorised,
    NotFound,
    PolicyAdmin,
    Previews,
    Reports,
    Reviews,
    ServerSettingsService,
)
from tests.fakes.store import FakeStore
from tests.workflow.conftest import verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

A, B = "guild-a", "guild-b"
ADMIN_A = Actor(id="admin-a", platform="discord", server_id=A, is_admin=True)
MOD_A = Actor(id="mod-a", platform="discord", server_id=A, roles=("mods",))
MOD_B = Actor(id="mod-b", platform="discord", server_id=B, roles=("mods",))
AUTHOR = "member-1"


class _Opinion:
    async def classify(self, request: object) -> Verdict:
        return verdict(False)


@pytest.fixture
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


async def setup(store: FakeStore) -> None:
    for server in (A, B):
        settings = ServerSettings(platform="discord", server_id=server, moderator_role_ids=("mods",))
        await store.settings.put(settings, utcnow())
        await store.policies.add_version("discord", server, PolicyContent(name="harassment", text="t"), "setup")


async def case_in(store: FakeStore, server: str, author: str = AUTHOR, status: CaseStatus = CaseStatus.OPEN) -> Case:
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
    case = Case(id=new_case_id(), message=msg, status=status, verdicts=(verdict(),))
    await store.record_decision(queue_id, case, [])
    return case


def services(store: FakeStore, sink: FakeSink) -> tuple[Reviews, Appeals]:
    return Reviews(store, {"discord": sink}), Appeals(store, _Opinion(), {"discord": sink}, FakeModChannel())  # type: ignore[arg-type]


async def test_an_admin_of_one_server_cannot_touch_the_cases_of_another(store: FakeStore, sink: FakeSink) -> None:
    await setup(store)
    case_b = await case_in(store, B)
    reviews, _appeals = services(store, sink)
    with pytest.raises(NotFound, match=f"server {A} has no case"):
        await reviews.confirm(case_b.id, ADMIN_A, delete=True)
    with pytest.raises(NotFound):
        await reviews.dismiss(case_b.id, ADMIN_A)
    with pytest.raises(NotFound):
        await reviews.show(case_b.id, ADMIN_A)
    # The same admin id on another platform is another person's account in another place.
    console_admin = ADMIN_A.model_copy(update={"platform": "console", "server_id": B})
    with pytest.raises(NotFound):
        await reviews.confirm(case_b.id, console_admin)
    assert sink.executed == []
    assert (await store.cases.get(case_b.id)).status is CaseStatus.OPEN  # type: ignore[union-attr]
    # Its own moderators decide it.
    assert (await reviews.confirm(case_b.id, MOD_B)).case.status is CaseStatus.CONFIRMED


async def test_an_admin_of_one_server_cannot_decide_the_appeals_of_another(store: FakeStore, sink: FakeSink) -> None:
    await setup(store)
    case_b = await case_in(store, B)
    _reviews, appeals = services(store, sink)
    await appeals.file(case_b.id, Actor(id=AUTHOR, platform="discord", server_id=B), "a quote")
    for call in (appeals.uphold, appeals.overturn):
        with pytest.raises(NotFound):
            await call(case_b.id, ADMIN_A)
    with pytest.raises(NotFound):
        await appeals.view(case_b.id, ADMIN_A)
    with pytest.raises(NotFound):
        await appeals.second_opinion(case_b.id, ADMIN_A)
    assert [v.case_id for v in await appeals.waiting(MOD_B)] == [case_b.id]
    assert await appeals.waiting(ADMIN_A) == []


async def test_policies_settings_drafts_and_reports_are_those_of_the_actors_server(store: FakeStore) -> None:
    await setup(store)
    admin = PolicyAdmin(store)
    await admin.set(ADMIN_A, _policy_file("Only in A."))
    (a_policy,) = await store.policies.live("discord", A)
    (b_policy,) = await store.policies.live("discord", B)
    assert "Only in A." in a_policy.policy.text and b_policy.policy.text == "t"
    await admin.disable(ADMIN_A, "harassment")
    assert [lp.enabled for lp in await store.policies.live("discord", B)] == [True]
    settings = ServerSettingsService(store)
    await settings.update(ADMIN_A, {"retention_days": 3})
    assert (await store.settings.get("discord", B)).retention_days == 30  # type: ignore[union-attr]
    # A draft previewed in B cannot be applied from A.
    draft = await store.policies.add_draft(
        "discord", B, PolicyContent(name="harassment", text="x"), 1, "m", {}, utcnow()
    )
    with pytest.raises(NotFound, match=f"server {A} has no draft {draft.id}"):
        await Previews(store, _Opinion()).apply(ADMIN_A, draft.id)  # type: ignore[arg-type]
    # Moderators of B see B's records, not A's.
    assert [e.actor for e in await admin.audit_log(MOD_B)] == []
    assert (await Reports(store).shadow(MOD_B)).server_id == B
    assert [r async for r in Labels(store).export(MOD_B)] == []


async def test_the_author_appeals_from_a_direct_message_where_only_the_author_may_act(
    store: FakeStore, sink: FakeSink
) -> None:
    await setup(store)
    case = await case_in(store, A)
    _, appeals = services(store, sink)
    in_dm = Actor(id=AUTHOR, platform="discord", server_id=None)
    with pytest.raises(NotAuthorised, match="only the author of the message may"):
        await appeals.file(case.id, Actor(id="someone", platform="discord", server_id=None), "mine")
    with pytest.raises(NotFound):  # another platform's DM is another account
        await appeals.file(case.id, Actor(id=AUTHOR, platform="slack", server_id=None), "mine")
    view = await appeals.file(case.id, in_dm, "it was a quote")
    assert view.appeal_status.value == "pending"
    assert (await appeals.view(case.id, in_dm)).statement == "it was a quote"
    # A moderator does not act from a DM: roles are checked in the server.
    with pytest.raises(NotAuthorised, match="acts outside any server"):
        await appeals.overturn(case.id, MOD_A.model_copy(update={"server_id": None}))


async def test_a_moderator_cannot_decide_about_their_own_message(store: FakeStore, sink: FakeSink) -> None:
    await setup(store)
    own = await case_in(store, A, author=MOD_A.id)
    reviews, appeals = services(store, sink)
    with pytest.raises(NotAuthorised, match="about their own message"):
        await reviews.dismiss(own.id, MOD_A)
    with pytest.raises(NotAuthorised, match="about their own message"):
        await reviews.confirm(own.id, MOD_A)
    assert await store.decisions.for_case(own.id) == []
    await appeals.file(own.id, Actor(id=MOD_A.id, platform="discord", server_id=A), "I was quoting")
    with pytest.raises(NotAuthorised, match="about their own message"):
        await appeals.overturn(own.id, MOD_A.model_copy(update={"roles": ("mods",)}))


async def test_a_server_admin_may_and_the_audit_marks_it_a_self_review(store: FakeStore, sink: FakeSink) -> None:
    await setup(store)
    own = await case_in(store, A, author=ADMIN_A.id)
    reviews, _appeals = services(store, sink)
    outcome = await reviews.dismiss(own.id, ADMIN_A, note="my own joke")
    assert outcome.decision.self_review
    (entry,) = await store.audit.for_server("discord", A)
    assert (entry.actor, entry.action, entry.subject, entry.after) == (
        ADMIN_A.id,
        "case.self_review",
        f"case:{own.id}",
        "dismiss",
    )
    # A decision about someone else's message is no self-review and is not audited as one.
    other = await case_in(store, A)
    assert not (await reviews.confirm(other.id, ADMIN_A)).decision.self_review
    assert len(await store.audit.for_server("discord", A)) == 1


def _policy_file(extra: str) -> str:
    from tests.workflow.conftest import policy_text

    return policy_text().replace("# Harassment", f"# Harassment\n\n{extra}", 1)
