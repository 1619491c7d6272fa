"""Preview of a draft against the server's recent retained messages, and the explicit apply."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from bot.classifier import OllamaClassifier
from bot.domain import CaseStatus
from bot.store.sqlite import SqliteStore
from bot.workflow import NotAuthorised, NotFound, PolicyAdmin, Previews, Refused
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, system_of, verdict_json
from tests.workflow.conftest import (
    ADMIN,
    MEMBER,
    MOD,
    SERVER,
    acting,
    configure,
    policy_text,
    seed_case,
    snapshot,
    verdict,
)
from tests.workflow.fakes import FakeClock

DRAFT = policy_text().replace(
    "- HB1.a: Insulting a target or mocking their looks, disability, or private life.",
    "- HB1.a: Calling a target a clown, or mocking their looks, disability, or private life.",
)


def draft_model(request: dict[str, Any]) -> Reply:
    text = content_of(request)["content"]["text"]
    if "clown" in text:
        return Reply(verdict_json(1, ["HB1.a"], "high", "Calls a member a clown (HB1.a)."))
    return Reply(verdict_json(0, ["HB0.a"], "high", "Banter (HB0.a)."))


async def seed_history(store: SqliteStore, clock: FakeClock) -> dict[str, str]:
    ids = {}
    ids["too_old"] = (await seed_case(store, text="ancient clown", status=CaseStatus.CLEAN)).id
    clock.advance(minutes=1)
    ids["idiot"] = (await seed_case(store, text="you are an idiot")).id
    clock.advance(minutes=1)
    ids["clown"] = (await seed_case(store, text="you are a clown", status=CaseStatus.CLEAN)).id
    clock.advance(minutes=1)
    ids["gold"] = (await seed_case(store, text="selling gold", status=CaseStatus.CLEAN)).id
    clock.advance(minutes=1)
    ids["bot"] = (await seed_case(store, text="clown bot", is_bot=True, status=CaseStatus.SKIPPED, verdicts=[])).id
    clock.advance(minutes=1)
    purged = await seed_case(store, text="purged clown", status=CaseStatus.CLEAN)
    async with store.raw_transaction() as conn:
        await conn.execute("UPDATE cases SET text = NULL WHERE id = ?", (purged.id,))
    ids["purged"] = purged.id
    return ids


async def test_preview_reports_what_would_change_and_nothing_goes_live(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama, clock: FakeClock
) -> None:
    await configure(wstore)
    ids = await seed_history(wstore, clock)
    fake_ollama.responder = draft_model
    policies_before = await wstore.fetchall("SELECT * FROM policies")

    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT, last=4, source="draft.md")

    assert (report.name, report.base_version, report.examined, report.skipped) == ("harassment", 1, 4, 1)
    assert [c.case_id for c in report.newly_flagged] == [ids["clown"]]
    assert [c.case_id for c in report.no_longer_flagged] == [ids["idiot"]]
    assert report.unchanged == 1 and report.undecided == 0
    clown = report.newly_flagged[0]
    assert (clown.text, clown.before and clown.before.violation) == ("you are a clown", False)
    assert clown.after.rationale == "Calls a member a clown (HB1.a)."
    idiot = report.no_longer_flagged[0]
    assert idiot.before is not None and idiot.before.rationale == "Insults a member (HB1.a)."
    assert idiot.after.rationale == "Banter (HB0.a)."
    # Only retained, classifiable, recent messages went to the model, judged by the draft.
    sent = fake_ollama.chat_requests()
    assert sorted(content_of(r)["content"]["text"] for r in sent) == [
        "selling gold",
        "you are a clown",
        "you are an idiot",
    ]
    assert all(system_of(r) == DRAFT[DRAFT.index("# Harassment") :] for r in sent)
    assert all(r["think"] == "low" for r in sent)
    # Nothing is live until applied.
    assert await wstore.fetchall("SELECT * FROM policies") == policies_before


async def test_apply_makes_exactly_the_previewed_draft_live_once(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama, clock: FakeClock
) -> None:
    await configure(wstore)
    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT)
    policy = await Previews(wstore, classifier).apply(MOD, report.draft_id)
    assert (policy.name, policy.version, policy.author) == ("harassment", 2, "mod-1")
    assert "Calling a target a clown" in policy.text
    last = (await wstore.audit.for_server("console", SERVER))[-1]
    assert (last.actor, last.action, last.before, last.after) == (
        "mod-1",
        f"policy.apply_draft_{report.draft_id}",
        "v1",
        "v2",
    )
    before = await snapshot(wstore)
    with pytest.raises(Refused, match=f"draft {report.draft_id} was already applied by mod-1 as harassment v2"):
        await Previews(wstore, classifier).apply(MOD, report.draft_id)
    assert await snapshot(wstore) == before


async def test_apply_is_refused_when_the_policy_changed_since_the_preview(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT)
    await PolicyAdmin(wstore).set(MOD, policy_text().replace("Insulting a target", "Insulting"))
    before = await snapshot(wstore)
    with pytest.raises(Refused, match=r"changed since draft \d+ was previewed \(v1 then, v2 now\): preview"):
        await Previews(wstore, classifier).apply(MOD, report.draft_id)
    assert await snapshot(wstore) == before


async def test_a_new_policy_can_be_previewed_against_messages_it_never_judged(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    await seed_case(wstore, text="free nitro, click here", status=CaseStatus.CLEAN, verdicts=[verdict(False)])
    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, policy_text("spam-scams"))
    assert report.base_version == 0
    assert [c.text for c in report.newly_flagged] == []  # the fake flags only its bad words
    fake_ollama.bad_words.add("nitro")
    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, policy_text("spam-scams"))
    assert [(c.text, c.before) for c in report.newly_flagged] == [("free nitro, click here", None)]
    policy = await Previews(wstore, classifier).apply(MOD, report.draft_id)
    assert (policy.name, policy.version) == ("spam-scams", 1)


async def test_preview_refusals_change_nothing(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    await seed_case(wstore)
    before = await snapshot(wstore)
    with pytest.raises(NotAuthorised):
        await Previews(wstore, classifier, clock=wstore.now).preview(MEMBER, DRAFT)
    with pytest.raises(Refused, match="preview takes 1 to 1000 messages; 0 was asked for"):
        await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT, last=0)
    with pytest.raises(Refused, match="unknown section"):
        await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT.replace("## SAFE", "## SAVE"))
    assert fake_ollama.chat_requests() == []
    fake_ollama.rec.inject("POST", "/api/chat", lambda: web.Response(status=503, text='{"error": "busy"}'))
    with pytest.raises(Refused, match=r"the model did not answer .*no draft was saved"):
        await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT)
    assert await snapshot(wstore) == before


async def test_apply_refusals_change_nothing(
    wstore: SqliteStore, classifier: OllamaClassifier, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    report = await Previews(wstore, classifier, clock=wstore.now).preview(MOD, DRAFT)
    before = await snapshot(wstore)
    with pytest.raises(NotAuthorised):
        await Previews(wstore, classifier).apply(MEMBER, report.draft_id)
    with pytest.raises(NotFound, match="has no draft 999"):
        await Previews(wstore, classifier).apply(ADMIN, 999)
    with pytest.raises(NotFound):  # a draft belongs to its server
        await Previews(wstore, classifier).apply(acting(ADMIN, "other-server"), report.draft_id)
    assert await snapshot(wstore) == before
