"""The Message boundary makes text valid, and the effect context carries what a sink needs."""

from __future__ import annotations

import json
from pathlib import Path

from bot.domain import (
    Author,
    Case,
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Message,
    PolicyBrief,
    RuleText,
    Verdict,
)
from bot.policy_format import rules_in
from tests.helpers import make_message


def test_lone_surrogates_and_nul_become_replacement_characters() -> None:
    raw = json.loads('{"text": "a\\ud800b\\u0000c", "name": "\\udfff"}')
    message = Message(
        platform="discord",
        server_id="g1",
        channel_id="c1",
        message_id="m1",
        author=Author(id="u1", name=raw["name"]),
        text=raw["text"],
    )
    assert message.text == "a\ufffdb\ufffdc"
    assert message.author.name == "\ufffd"
    # Encodable everywhere downstream: the store, the model client, logs.
    message.model_dump_json().encode("utf-8")


def test_thread_scope_is_the_parent_channel() -> None:
    author = Author(id="u1")
    in_thread = Message(
        platform="discord", server_id="g", channel_id="t1", message_id="m", author=author, parent_channel_id="c1"
    )
    plain = Message(platform="discord", server_id="g", channel_id="c1", message_id="m2", author=author)
    assert in_thread.scope_channel_id == "c1"
    assert plain.scope_channel_id == "c1"


def test_rules_in_reads_violates_and_safe_rules() -> None:
    body = "# T\n\n## VIOLATES (1)\n- H1.a: Insults.\n- H1.b: Threats.\n\n## SAFE (0)\n- H0.a: Banter.\n"
    rules = rules_in(body)
    assert [(r.id, r.violates, r.text) for r in rules] == [
        ("H1.a", True, "Insults."),
        ("H1.b", True, "Threats."),
        ("H0.a", False, "Banter."),
    ]
    brief = PolicyBrief(name="h", version=1, rules=tuple(RuleText(id=r.id, text=r.text) for r in rules))
    assert brief.rule("H1.b").text == "Threats."
    assert brief.rule("X9.z") == RuleText(id="X9.z", text="", known=False)
    assert EffectKind.UPDATE_FLAG.value == "update_flag"


async def test_a_sinks_reference_is_stored_and_reaches_the_next_effects_context(tmp_path: Path) -> None:
    from bot import effect_runner
    from bot.store.sqlite import SqliteStore
    from tests.helpers import add_policy

    class PostingSink:
        platform = "console"
        supported_effects = frozenset(EffectKind)

        def __init__(self) -> None:
            self.contexts: list[EffectContext] = []

        async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
            self.contexts.append(context)
            return EffectResult(outcome=EffectOutcome.DONE, reference=f"mod/{effect.kind.value}")

    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        policy = await add_policy(store, "g1", "harassment", "## VIOLATES (1)\n- H1.a: Insults.\n")
        message = make_message("m1", "you idiot", server="g1")
        verdict = Verdict(policy=policy.name, policy_version=policy.version, violation=True, rule_ids=("H1.a",))
        case = Case(id="C1", message=message, status=CaseStatus.OPEN, verdicts=(verdict,))
        queue_id = await store.enqueue(message)
        assert queue_id is not None
        await store.record_decision(queue_id, case, [(Effect(kind=EffectKind.FLAG), EffectOutcome.PENDING)])
        sink = PostingSink()
        stored = await store.cases.get("C1")
        assert stored is not None
        await effect_runner.carry_out(store, {"console": sink}, stored, stored.effects, finish_queue_id=queue_id)
        flagged = await store.cases.get("C1")
        assert flagged is not None and flagged.effects[0].reference == "mod/flag"
        assert sink.contexts[0].policy("harassment") is not None
        assert sink.contexts[0].policy("harassment").rule("H1.a").text == "Insults."  # type: ignore[union-attr]

        context = await effect_runner.build_context(store, flagged)
        assert context.flag_reference == "mod/flag"
    finally:
        await store.close()
