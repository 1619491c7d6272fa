"""Issue 7 §9: one member's data is exported and erased, for data-subject requests.

Erasure keeps the decisions with the author id redacted; the member's words and id are
gone from every surface and from the database file itself.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import adapters.console.privacy_cli
import adapters.console.workflow_cli
from adapters.console.cli import app
from bot.domain import Author, CaseStatus, Confidence, Effect, EffectKind, EffectOutcome, Message, Verdict
from bot.store.ports import ERASED_MEMBER
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor, Appeals, Labels, MemberDataRequests, NotAuthorised, Refused, Reviews
from tests.workflow.conftest import ADMIN, MOD, SERVER, configure, seed_case
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

_ = adapters.console.privacy_cli
MEMBER = "member-7731-xyz"
WORDS = "quokka saxophone 5521, you absolute clown"


def said(violation: bool = True) -> Verdict:
    return Verdict(
        policy="harassment",
        policy_version=1,
        violation=violation,
        rule_ids=("HB1.a",) if violation else (),
        confidence=Confidence.HIGH,
        rationale=f"'{WORDS}' insults a member",
        reasoning=f"The text {WORDS} is an insult.",
        raw_output=json.dumps({"rationale": WORDS}),
        model="gpt-oss-safeguard:20b",
    )


class QuotingModel:
    async def classify(self, request: object) -> Verdict:
        return said(violation=False)


async def member_with_history(store: SqliteStore, clock: FakeClock) -> str:
    """MEMBER's flagged, appealed, upheld case in g1; another member's case; MEMBER's message still queued."""
    await configure(store)
    flag = Effect(kind=EffectKind.FLAG, policy="harassment", rule_ids=("HB1.a",), reason=said().rationale)
    case = await seed_case(store, text=WORDS, author=MEMBER, verdicts=[said()], effects=[(flag, EffectOutcome.DONE)])
    appeals = Appeals(store, QuotingModel(), {"console": FakeSink()}, FakeModChannel(), clock)  # type: ignore[arg-type]
    await appeals.file(case.id, Actor(id=MEMBER, platform="console", server_id=SERVER), f"'{WORDS}' was a joke")
    await appeals.complete_second_opinion(case.id)  # the queued second opinion, as the bot's worker runs it
    await appeals.uphold(case.id, MOD, note=f"{MEMBER} said this twice this week")
    await seed_case(store, text="someone else's words", author="member-2")
    waiting = Message(
        platform="console",
        server_id=SERVER,
        channel_id="general",
        message_id="queued-1",
        author=Author(id=MEMBER, name="Quokka Fan", roles=("regulars",)),
        text=f"{WORDS} again",
        sent_at=clock.now,
    )
    assert await store.enqueue(waiting) is not None
    return case.id


def on_disk(path: Path) -> bytes:
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_an_admin_exports_everything_stored_about_a_member(wstore: SqliteStore, clock: FakeClock) -> None:
    case_id = await member_with_history(wstore, clock)
    data = await MemberDataRequests(wstore, clock).export(ADMIN, MEMBER)

    (message,) = data.messages
    assert (message["case_id"], message["text"], message["status"]) == (case_id, WORDS, "upheld")
    assert message["verdicts"][0]["rule_ids"] == ["HB1.a"] and WORDS in message["verdicts"][0]["rationale"]
    assert message["actions"][0]["kind"] == "flag"
    assert message["moderator_decisions"] == [
        {
            "action": "uphold",
            "violation": True,
            "at": clock.now.isoformat(),
            "note": f"{MEMBER} said this twice this week",
        }
    ]
    assert message["appeal"]["statement"] == f"'{WORDS}' was a joke" and message["appeal"]["second_opinion"]
    assert [w["message_id"] for w in data.waiting_to_be_judged] == ["queued-1"]
    # Other people's data stays out: the other member's message, and who the moderators were.
    exported = data.model_dump_json()
    assert "someone else's words" not in exported and "member-2" not in exported and MOD.id not in exported


async def test_only_an_admin_of_that_server_answers_a_request(wstore: SqliteStore, clock: FakeClock) -> None:
    await member_with_history(wstore, clock)
    requests = MemberDataRequests(wstore, clock)
    for who in (MOD, Actor(id=MEMBER, platform="console", server_id=SERVER)):
        with pytest.raises(NotAuthorised, match="only admins may"):
            await requests.export(who, MEMBER)
        with pytest.raises(NotAuthorised, match="only admins may"):
            await requests.erase(who, MEMBER)
    elsewhere = Actor(id="admin-of-g2", platform="console", server_id="g2", is_admin=True)
    assert (await requests.export(elsewhere, MEMBER)).messages == ()
    with pytest.raises(Refused, match="no one behind it"):
        await requests.export(ADMIN, ERASED_MEMBER)


async def test_erasure_keeps_the_decisions_and_leaves_no_trace_of_the_member(
    wstore: SqliteStore, clock: FakeClock
) -> None:
    case_id = await member_with_history(wstore, clock)
    requests = MemberDataRequests(wstore, clock)
    assert WORDS.encode() in on_disk(wstore.path)

    erasure = await requests.erase(ADMIN, MEMBER)

    assert (erasure.erased.cases, erasure.erased.appeals, erasure.erased.queued) == (1, 1, 1)
    assert (await requests.export(ADMIN, MEMBER)).empty
    case, decisions = await Reviews(wstore, {"console": FakeSink()}).show(case_id, MOD)
    assert (case.message.author.id, case.status, case.rule_ids) == (ERASED_MEMBER, CaseStatus.UPHELD, ("HB1.a",))
    assert [(d.action.value, d.moderator_id, d.note) for d in decisions] == [("uphold", MOD.id, "")]
    (label,) = [label async for label in Labels(wstore).export(MOD)]
    assert label["label"]["action"] == "uphold" and label["text"] is None
    (audit,) = [e for e in await wstore.audit.for_server("console", SERVER) if e.action == "privacy.erase"]
    assert audit.actor == ADMIN.id and MEMBER not in audit.model_dump_json()
    # Gone from the file itself, words and id alike (deleted content is zeroed, the WAL emptied).
    disk = on_disk(wstore.path)
    assert WORDS.encode() not in disk and MEMBER.encode() not in disk and b"Quokka Fan" not in disk
    # The other member keeps everything.
    others = [c async for c in wstore.cases.every() if c.message.author.id == "member-2"]
    assert [c.message.text for c in others] == ["someone else's words"]


# ---------------------------------------------------------------- the command line


def modbot(db: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"MODBOT_DB": str(db), "OLLAMA_HOST": "http://127.0.0.1:9"})


async def seeded(path: Path) -> None:
    clock = FakeClock()
    store = await SqliteStore.open(path, now=clock)
    try:
        await member_with_history(store, clock)
        await seed_case(store, text="in another server", author=MEMBER, server="g2")
    finally:
        await store.close()


def test_privacy_commands(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    asyncio.run(seeded(db))

    refused = modbot(db, "privacy", "export", "--user", MEMBER)
    assert refused.exit_code == 2 and "--all-servers" in refused.stderr
    out = tmp_path / "export.json"
    done = modbot(db, "privacy", "export", "--user", MEMBER, "--all-servers", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [s["server_id"] for s in document["servers"]] == [SERVER, "g2"]
    assert document["servers"][0]["messages"][0]["text"] == WORDS
    again = modbot(db, "privacy", "export", "--user", MEMBER, "--server", SERVER, "--out", str(out))
    assert again.exit_code == 2 and "exists" in again.stderr

    dry = modbot(db, "privacy", "erase", "--user", MEMBER, "--server", SERVER)
    assert dry.exit_code == 2 and "nothing was erased" in dry.stderr and "--yes" in dry.stderr
    assert json.loads(modbot(db, "privacy", "export", "--user", MEMBER, "-s", SERVER).stdout)["servers"][0]["messages"]

    erased = modbot(db, "privacy", "erase", "--user", MEMBER, "--all-servers", "--yes")
    assert erased.exit_code == 0, erased.output
    assert "console server g1: erased the member's words and id from 1 case(s)" in erased.stdout
    assert "console server g2" in erased.stdout
    after = json.loads(modbot(db, "privacy", "export", "--user", MEMBER, "--all-servers").stdout)
    assert after["servers"] == []
