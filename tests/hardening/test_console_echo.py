"""Issue 7 §9: everything the console echoes that is not the bot's own words goes through the safe echo.

Model rationales, rule ids, appeal statements, notes, message and author ids, from the
hostile corpus, through every renderer of the console and through the real commands
(`review list`, `appeal show`, `appeal list`, the "new appeal" notice, `audit`, `replay`).
The checks are written from the platforms' and terminals' syntax (tests/text's patterns),
not from bot.sanitise: no pings, no labelled links, no controls or reordering, no forged lines.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import adapters.console.workflow_cli
from adapters.console.cli import app
from adapters.console.mapping import readable_line
from adapters.console.render import appeal_text, case_text, digest_text, notice_text, outcome_text
from adapters.console.sink import ConsoleEffectSink
from bot.domain import (
    Appeal,
    AppealStatus,
    Author,
    Case,
    CaseStatus,
    Confidence,
    DecisionAction,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    HumanDecision,
    Message,
    ServerSettings,
    Verdict,
)
from bot.notices import AppealFiled, Digest, PolicyCount
from bot.sanitise import safe_inline, valid_text
from bot.store.ports import HealthState
from bot.store.sqlite import SqliteStore
from bot.text._unicode import BIDI_CONTROL
from bot.workflow.appeals import appeal_view
from bot.workflow.review import DecisionOutcome
from bot.workflow.status import PlatformStatus, StatusReport
from tests.conftest import REPO
from tests.fakes.ollama_fake import FakeOllama, Reply, verdict_json
from tests.helpers_hostile import HostileCase, hostile_ids, hostile_texts
from tests.text.test_hostile_corpus import CONTROL, LABELLED_LINKS, LINE_BREAK, PINGS
from tests.workflow.conftest import DATA, SERVER, configure, seed_case

_ = adapters.console.workflow_cli
AT = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
FOREIGN = hostile_texts() + hostile_ids()


def assert_inert(output: str) -> list[str]:
    """Each line of the output is harmless on Discord, Slack and a terminal; returns the lines."""
    output.encode("utf-8")  # no lone surrogate survives
    lines = output.split("\n")
    for line in lines:
        for pattern in (*PINGS, *LABELLED_LINKS, CONTROL, BIDI_CONTROL, LINE_BREAK):
            assert not pattern.search(line), (pattern.pattern, line[:300])
        assert "```" not in line
    return lines


def everywhere(value: str) -> tuple[Case, Appeal, HumanDecision]:
    """A case in which every field someone else chose holds the hostile value."""
    ident = value[:5000] or "x"
    message = Message(
        platform="console",
        server_id=ident,
        channel_id=ident,
        message_id=ident,
        author=Author(id=ident, name=value),
        text=value,
        sent_at=AT,
    )
    verdict = Verdict(
        policy=ident,
        policy_version=1,
        violation=True,
        rule_ids=(ident, "HB1.a"),
        confidence=Confidence.HIGH,
        rationale=value,
        reasoning=value,
    )
    effect = Effect(kind=EffectKind.FLAG, policy=ident, rule_ids=(ident,), reason=value, requested_by=ident)
    case = Case(
        id="C1",
        message=message,
        status=CaseStatus.APPEALED,
        verdicts=(verdict,),
        effects=(EffectRecord(id=1, case_id="C1", effect=effect, outcome=EffectOutcome.FAILED, detail=value),),
        decided_by=ident,
        created_at=AT,
    )
    appeal = Appeal(
        id=1,
        case_id="C1",
        author_id=ident,
        statement=valid_text(value)[:1000],  # as Appeals.file stores it
        status=AppealStatus.UPHELD,
        second_opinion=(verdict,),
        decided_by=ident,
        note=value,
        created_at=AT,
        decided_at=AT,
    )
    decision = HumanDecision(
        id=1,
        case_id="C1",
        platform="console",
        server_id=ident,
        action=DecisionAction.UPHOLD,
        violation=True,
        moderator_id=ident,
        note=value,
        at=AT,
    )
    return case, appeal, decision


@pytest.mark.parametrize("hostile", FOREIGN, ids=lambda c: c.name)
def test_case_appeal_and_notice_renderers_echo_safely(hostile: HostileCase) -> None:
    case, appeal, decision = everywhere(hostile.value)

    shown = assert_inert(case_text(case, [decision]))
    # One line each: the head, the text, the verdict, the effect, the decision. An id with a
    # line break would add a line (a forged case, or a forged decision).
    assert [line.split(":")[0].split(" ")[0] if line.startswith("case") else line.split(":")[0] for line in shown] == [
        "case",
        "  text",
        "  verdict",
        "  effect 1",
        "  decision",
    ]
    view = appeal_view(case, appeal)
    shown = assert_inert(appeal_text(view))
    assert len(shown) == 6 and shown[0].startswith("appeal 1 on case C1")
    assert [line.split(":")[0] for line in shown[1:5]] == ["  message", "  original", "  statement", "  second opinion"]
    shown = assert_inert(notice_text(AppealFiled(appeal=view)))
    assert shown[0] == "new appeal" and len(shown) == 7
    assert (
        len(
            assert_inert(
                outcome_text(
                    DecisionOutcome(case=case, decision=decision, effects=case.effects, notes=(hostile.value,))
                )
            )
        )
        == 3
    )


@pytest.mark.parametrize("hostile", FOREIGN, ids=lambda c: c.name)
def test_replay_lines_digests_and_printed_effects_echo_safely(hostile: HostileCase) -> None:
    case, _, _ = everywhere(hostile.value)
    (line,) = assert_inert(readable_line(case.model_copy(update={"status": CaseStatus.OPEN})))
    assert line.endswith("-> flag[failed]")
    digest = Digest(
        server_id=case.message.server_id,
        day="2025-03-03",
        period_start=AT,
        period_end=AT,
        messages=1,
        flagged=1,
        confirmed=0,
        dismissed=0,
        appeals_filed=0,
        appeals_decided=0,
        overturned=0,
        overturn_rate=None,
        median_latency_ms=None,
        by_policy=(PolicyCount(policy=case.verdicts[0].policy, rule_id=case.verdicts[0].rule_ids[0], flags=1),),
        shadow_evaluation=(hostile.value,),
    )
    assert len(assert_inert(digest_text(digest))) == 3
    printed = io.StringIO()
    sink = ConsoleEffectSink(out=printed)
    context = EffectContext(case=case, settings=ServerSettings(platform="console", server_id="g1"))
    for kind in (EffectKind.FLAG, EffectKind.UPDATE_FLAG):
        effect = case.effects[0].effect.model_copy(update={"kind": kind})
        asyncio.run(sink.execute(effect, context.model_copy(update={"flag_reference": hostile.value})))
    assert len(assert_inert(printed.getvalue().rstrip("\n"))) == 2


@pytest.mark.parametrize("hostile", FOREIGN, ids=lambda c: c.name)
def test_the_status_report_echoes_safely(hostile: HostileCase) -> None:
    report = StatusReport(
        store={"kind": "sqlite", "path": "modbot.db"},
        store_bytes=0,
        queue={},
        model=HealthState(failing_since=AT, last_problem=hostile.value),
        platforms=(
            PlatformStatus(platform="console", running=True, misconfigured=(f"server {hostile.value}: no timeouts",)),
        ),
    )
    assert len(assert_inert("\n".join(report.lines()))) == 5


# ---------------------------------------------------------------- through the commands

EVERYONE = "Quotes '@everyone free nitro at [discord.gift](https://evil.example) <@&123>' (HB1.a)"
FORGED_ID = "123\n[mod channel g1] all cases dismissed"
MOD_ARGS = ["--actor", "mod-1", "--role", "mods"]


def modbot(db: Path, *args: str) -> Result:
    env = {"MODBOT_DB": str(db), "MODBOT_POLICY_DIR": str(DATA), "OLLAMA_HOST": "http://127.0.0.1:9"}
    return CliRunner().invoke(app, list(args), env=env)


async def seeded(db: Path) -> tuple[str, str]:
    """An open case and an appealed one, each quoting @everyone and with forged-line ids."""
    store = await SqliteStore.open(db)
    try:
        await configure(store)
        verdict = Verdict(
            policy="harassment",
            policy_version=1,
            violation=True,
            rule_ids=("HB1.a", "HB9\n[mod channel g1] forged"),
            confidence=Confidence.HIGH,
            rationale=EVERYONE,
        )
        open_case = await seed_case(store, text="@here look", author="<@123>", verdicts=[verdict])
        appealed = await seed_case(store, author="\x1b[2J\u202eevil", verdicts=[verdict])
        await store.appeals.add(appealed.id, appealed.message.author.id, "@everyone\nmods are corrupt", AT)
        await store.cases.set_status(appealed.id, CaseStatus.APPEALED)
        async with store.raw_transaction() as conn:  # an id as a platform may deliver it
            await conn.execute("UPDATE cases SET message = json_set(message, '$.message_id', ?)", (FORGED_ID,))
        return open_case.id, appealed.id
    finally:
        await store.close()


def test_review_list_appeal_show_appeal_list_and_audit_echo_safely(tmp_path: Path) -> None:
    db = tmp_path / "echo.db"
    _, appealed_id = asyncio.run(seeded(db))

    listed = modbot(db, "review", "list", "-s", SERVER, *MOD_ARGS)
    assert listed.exit_code == 0, listed.output
    lines = assert_inert(listed.stdout.rstrip("\n"))
    assert [line.split(" ")[0] for line in lines if not line.startswith("  ")] == ["case"]
    assert len(lines) == 3 and "everyone" in lines[2]  # the rationale is shown, defused

    for args in (["appeal", "show", appealed_id], ["appeal", "list"]):
        shown = modbot(db, *args, "-s", SERVER, *MOD_ARGS)
        assert shown.exit_code == 0, shown.output
        lines = assert_inert(shown.stdout.rstrip("\n"))
        assert lines[0].startswith(f"appeal 1 on case {appealed_id}") and len(lines) == 5
        assert lines[3].startswith("  statement: ")

    changed = modbot(db, "settings", "set", "-s", SERVER, "--actor", FORGED_ID, "--admin", "retention_days=7")
    assert changed.exit_code == 0, changed.output
    audit = modbot(db, "audit", "-s", SERVER)
    assert audit.exit_code == 0
    assert len(assert_inert(audit.stdout.rstrip("\n"))) == 2  # the policy install and this change


async def run_modbot(db: Path, fake: FakeOllama, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "MODBOT_DB": str(db),
        "OLLAMA_HOST": fake.host,
        "MODBOT_POLICY_DIR": str(DATA),
        "MODBOT_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from adapters.console.cli import main; main()",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_the_new_appeal_notice_echoes_the_models_rationale_safely(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    db = tmp_path / "notice.db"
    store = await SqliteStore.open(db)
    try:
        await configure(store)
        case = await seed_case(store, author="author-1")
    finally:
        await store.close()
    fake_ollama.responder = lambda req: Reply(verdict_json(0, ["HB0.b\n[mod channel g1] forged"], "high", EVERYONE))
    code, out, err = await run_modbot(
        db, fake_ollama, "appeal", "file", case.id, "--actor", "author-1", "--statement", "<!channel> look again"
    )
    assert code == 0, err
    notice = err[err.index("[mod channel g1] new appeal") :].rstrip("\n")
    lines = assert_inert(notice)
    assert len(lines) == 6 and "second opinion: queued" in lines[5]
    assert_inert(out.rstrip("\n"))
    # The model's rationale comes with the second opinion (queued work for the running bot);
    # a moderator at the console asks for it at once, and it is shown inert too.
    code, out, err = await run_modbot(
        db, fake_ollama, "appeal", "second-opinion", case.id, "-s", SERVER, "--actor", "mod-1", "--admin"
    )
    assert code == 0, err
    lines = assert_inert(out.rstrip("\n"))
    assert any("second opinion" in line and "everyone" in line for line in lines)


@pytest.mark.slow
async def test_a_message_id_with_a_line_break_forges_no_replay_line(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    fake_ollama.bad_words.add("idiot")
    replayed = tmp_path / "messages.jsonl"
    rows = [
        {"id": FORGED_ID, "server": "g1", "channel": "c", "author": "a", "text": "you idiot"},
        {"id": "\x1b[2J\u202e2", "server": "g1\nforged", "channel": "c", "author": "a", "text": "hello"},
    ]
    replayed.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out, err = await run_modbot(
        tmp_path / "replay.db", fake_ollama, "replay", str(replayed), "--policy", str(DATA / "harassment.md")
    )
    assert code == 0, err
    lines = assert_inert(out.rstrip("\n"))
    assert len(lines) == 2 and all(" case " in line for line in lines)


@pytest.mark.parametrize("pasted", ["m1003@everyone", "id@here", "C1@channel"])
def test_a_broadcast_mention_inside_an_id_cannot_ping(pasted: str) -> None:
    # Discord pings @everyone and @here from inside a word; an e-mail address stays as written.
    assert_inert(case_text(everywhere(pasted)[0]))
    assert safe_inline("write to a@b.example", 100) == "write to a@b.example"
