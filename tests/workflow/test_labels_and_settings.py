"""Human decisions exported as labels, and settings changes (validated, authorised, audited)."""

from __future__ import annotations

import json

import pytest

from bot.domain import ServerSettings, StrikeLadder
from bot.store.sqlite import SqliteStore
from bot.workflow import Appeals, Labels, NotAuthorised, Refused, Reviews, ServerSettingsService, purge_message_text
from tests.workflow.conftest import ADMIN, AUTHOR_ACTOR, MEMBER, MOD, SERVER, configure, seed_case, snapshot, verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink


class _Opinion:
    """A stand-in classifier for the second opinion (the fake Ollama is exercised in test_appeals)."""

    async def classify(self, request: object) -> object:
        return verdict(False, rationale="")


async def test_every_human_decision_is_exported_as_a_label(
    wstore: SqliteStore, sink: FakeSink, channel: FakeModChannel, clock: FakeClock
) -> None:
    await configure(wstore)
    reviews = Reviews(wstore, {"console": sink}, clock)
    appeals = Appeals(wstore, _Opinion(), {"console": sink}, channel, clock)  # type: ignore[arg-type]
    confirmed = await seed_case(wstore, text="you are an idiot")
    dismissed = await seed_case(wstore, text="idiot move by me lol")
    appealed = await seed_case(wstore, text="quoting: 'idiot'")
    never_decided = await seed_case(wstore, text="still open")
    await reviews.confirm(confirmed.id, MOD, note="insult")
    await reviews.dismiss(dismissed.id, MOD)
    await appeals.file(appealed.id, AUTHOR_ACTOR, "it was a quote")
    await appeals.complete_second_opinion(appealed.id)  # the queued work, as the bot's workers run it
    await appeals.overturn(appealed.id, MOD, note="quote")

    labels = [label async for label in Labels(wstore).export(MOD)]

    assert [(r["case_id"], r["label"]["action"], r["label"]["violation"]) for r in labels] == [
        (confirmed.id, "confirm", True),
        (dismissed.id, "dismiss", False),
        (appealed.id, "overturn", False),
    ]
    assert never_decided.id not in {r["case_id"] for r in labels}
    first = labels[0]
    assert first["text"] == "you are an idiot"
    assert (first["policy"], first["policy_version"]) == ("harassment", 1)
    assert first["model_verdict"]["violation"] is True
    assert first["model_verdict"]["rule_ids"] == ["HB1.a"]
    assert first["model_verdict"]["rationale"] == "Insults a member (HB1.a)."
    assert first["label"]["moderator_id"] == "mod-1" and first["label"]["note"] == "insult"
    assert "author_id" not in first and "appeal" not in first
    overturn = labels[2]
    assert overturn["appeal"]["statement"] == "it was a quote"
    assert [v["violation"] for v in overturn["appeal"]["second_opinion"]] == [False]
    json.dumps(labels)  # every record is plain JSON


async def test_labels_outlive_the_text(wstore: SqliteStore, sink: FakeSink, clock: FakeClock) -> None:
    await configure(wstore, retention_days=7)
    case = await seed_case(wstore)
    await Reviews(wstore, {"console": sink}, clock).confirm(case.id, MOD)
    clock.advance(days=8)
    assert await purge_message_text(wstore, clock.now) == {("console", SERVER): 1}
    (label,) = [label async for label in Labels(wstore).export_every_server()]
    assert label["text"] is None
    # The rationale may quote the text: it goes with it; the rule ids and the label stay.
    assert label["model_verdict"]["rationale"] == ""
    assert label["model_verdict"]["rule_ids"] == ["HB1.a"]
    assert label["label"]["action"] == "confirm"


async def test_settings_changes_are_validated_authorised_and_audited(wstore: SqliteStore) -> None:
    await configure(wstore)
    updated = await ServerSettingsService(wstore).update(
        MOD,
        {"retention_days": 14, "strike_ladder": {"enabled": True, "steps": [{"strikes": 3, "timeout_minutes": 60}]}},
    )
    assert updated.retention_days == 14
    assert updated.strike_ladder == StrikeLadder(enabled=True, steps=({"strikes": 3, "timeout_minutes": 60},))  # type: ignore[arg-type]
    assert await ServerSettingsService(wstore).show(MOD) == updated
    entry = (await wstore.audit.for_server("console", SERVER))[-1]
    assert (entry.actor, entry.action) == ("mod-1", "settings.set")
    assert (
        json.loads(entry.before or "")["retention_days"] == 30 and json.loads(entry.after or "")["retention_days"] == 14
    )


async def test_settings_refusals_change_nothing(wstore: SqliteStore) -> None:
    await configure(wstore)
    before = await snapshot(wstore)
    with pytest.raises(NotAuthorised):
        await ServerSettingsService(wstore).update(MEMBER, {"retention_days": 14})
    with pytest.raises(NotAuthorised, match="only admins may"):
        await ServerSettingsService(wstore).update(MOD, {"moderator_role_ids": ["mods", "friends"]})
    with pytest.raises(Refused, match=r"retention_days=0 is out of range: give a whole number from 1 to 3650 \(days\)"):
        await ServerSettingsService(wstore).update(MOD, {"retention_days": 0})
    with pytest.raises(Refused, match="unknown setting retension_days; settings are:"):
        await ServerSettingsService(wstore).update(MOD, {"retension_days": 3})
    with pytest.raises(Refused, match="unknown setting server_id"):
        await ServerSettingsService(wstore).update(ADMIN, {"server_id": "elsewhere"})
    with pytest.raises(Refused, match=r"strike_ladder\.steps\[0\]\.strikes=1 is out of range"):
        await ServerSettingsService(wstore).update(MOD, {"strike_ladder": {"enabled": True, "steps": [{"strikes": 1}]}})
    assert await snapshot(wstore) == before
    # An admin may change who the moderators are.
    assert (
        await ServerSettingsService(wstore).update(ADMIN, {"moderator_role_ids": ["staff"]})
    ).moderator_role_ids == ("staff",)


async def test_a_new_server_shows_the_defaults(wstore: SqliteStore) -> None:
    slack_admin = ADMIN.model_copy(update={"platform": "slack", "server_id": "T1"})
    assert await ServerSettingsService(wstore).show(slack_admin) == ServerSettings(platform="slack", server_id="T1")
