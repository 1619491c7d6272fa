"""What members and moderators type into the workflow (appeal statements, notes, their ids) never breaks it.

A platform's modal can deliver lone surrogates and NUL (Discord and Slack JSON may carry
them): the appeal or the decision is recorded, with the text made valid, rather than failing
in the store or in pydantic's length check.
"""

from __future__ import annotations

import pytest

from bot.store.sqlite import SqliteStore
from bot.workflow import Actor, Appeals, Refused, Reviews
from tests.helpers_hostile import HostileCase, hostile_ids, hostile_texts
from tests.workflow.conftest import MOD, SERVER, configure, seed_case
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

TEXTS = [c for c in hostile_texts() if c.value.strip()]


class _NoOpinion:
    async def classify(self, request: object) -> object:
        raise ConnectionError("the model is down")


@pytest.mark.parametrize("hostile", TEXTS, ids=lambda c: c.name)
async def test_any_statement_and_note_are_recorded(hostile: HostileCase, wstore: SqliteStore, clock: FakeClock) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    appeals = Appeals(wstore, _NoOpinion(), {"console": FakeSink()}, FakeModChannel(), clock)  # type: ignore[arg-type]
    author = Actor(id=case.message.author.id, platform="console", server_id=SERVER)

    view = await appeals.file(case.id, author, hostile.value[:1000])
    await appeals.overturn(case.id, MOD, note=hostile.value[:1000])

    stored = await wstore.appeals.for_case(case.id)
    assert stored is not None and stored.statement == view.statement
    stored.statement.encode("utf-8")
    stored.note.encode("utf-8")
    assert "\x00" not in stored.statement + stored.note


@pytest.mark.parametrize("hostile", hostile_ids(), ids=lambda c: c.name)
async def test_any_moderator_id_is_recorded(hostile: HostileCase, wstore: SqliteStore, clock: FakeClock) -> None:
    await configure(wstore, admin_user_ids=())
    case = await seed_case(wstore)
    moderator = Actor(id=hostile.value, platform="console", server_id=SERVER, roles=("mods",))
    outcome = await Reviews(wstore, {"console": FakeSink()}, clock).dismiss(case.id, moderator, note="not abuse")
    outcome.decision.moderator_id.encode("utf-8")


async def test_an_empty_statement_is_still_refused(wstore: SqliteStore, clock: FakeClock) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    appeals = Appeals(wstore, _NoOpinion(), {"console": FakeSink()}, FakeModChannel(), clock)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="needs a statement"):
        await appeals.file(case.id, Actor(id=case.message.author.id, platform="console", server_id=SERVER), " \t ")
