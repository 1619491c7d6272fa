"""Carrying out a case's effects at most once: intent written before the adapter acts, result after."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bot.domain import (
    Case,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    Policy,
    PolicyBrief,
    RuleText,
    ServerSettings,
)
from bot.policy_format import rules_in
from bot.ports import EffectSink, ModerationStore

log = logging.getLogger(__name__)

INTERRUPTED_DETAIL = "interrupted by a restart; not retried (it may or may not have happened)"


async def carry_out(
    store: ModerationStore,
    sinks: Mapping[str, EffectSink],
    case: Case,
    records: Sequence[EffectRecord],
    finish_queue_id: int | None = None,
) -> list[EffectRecord]:
    """Run each pending effect once. With finish_queue_id, the last result also completes the queue item."""
    pending = [r for r in records if r.outcome is EffectOutcome.PENDING]
    if not pending and finish_queue_id is not None:
        await store.finish_queue_item(finish_queue_id)
    done: dict[int, EffectRecord] = {}
    context = await build_context(store, case) if pending else None
    for rec in pending:
        await store.set_effect_outcome(case.id, rec.id, EffectOutcome.STARTED)
        sink = sinks.get(case.message.platform)
        if sink is None:
            outcome, detail = EffectOutcome.UNSUPPORTED, f"no adapter for platform {case.message.platform!r}"
            reference = None
        else:
            try:
                assert context is not None
                result = await sink.execute(rec.effect, context)
                outcome, detail, reference = EffectOutcome(result.outcome), result.detail, result.reference
            except Exception as exc:
                log.warning("effect %s of case %s failed: %s", rec.effect.kind, case.id, type(exc).__name__)
                outcome, detail, reference = EffectOutcome.FAILED, f"{type(exc).__name__}: {exc}"[:500], None
        last = rec is pending[-1]
        await store.set_effect_outcome(
            case.id, rec.id, outcome, detail, finish_queue_id=finish_queue_id if last else None, reference=reference
        )
        done[rec.id] = rec.model_copy(update={"outcome": outcome, "detail": detail, "reference": reference})
    return [done.get(r.id, r) for r in records]


async def resume(
    store: ModerationStore, sinks: Mapping[str, EffectSink], case: Case, finish_queue_id: int | None = None
) -> list[EffectRecord]:
    """After a crash: an effect found started is marked interrupted, never run again; pending ones run."""
    records = list(case.effects)
    for i, rec in enumerate(records):
        if rec.outcome is EffectOutcome.STARTED:
            await store.set_effect_outcome(case.id, rec.id, EffectOutcome.INTERRUPTED, INTERRUPTED_DETAIL)
            records[i] = rec.model_copy(update={"outcome": EffectOutcome.INTERRUPTED, "detail": INTERRUPTED_DETAIL})
    return await carry_out(store, sinks, case, records, finish_queue_id)


def policy_brief(policy: Policy) -> PolicyBrief:
    return PolicyBrief(
        name=policy.name,
        version=policy.version,
        sensitive=policy.sensitive,
        author_notice=policy.author_notice,
        notice_text=policy.notice_text,
        rules=tuple(RuleText(id=r.id, text=r.text) for r in rules_in(policy.text)),
    )


async def build_context(store: ModerationStore, case: Case) -> EffectContext:
    """What a sink needs for the case's effects: settings, the cited policies' rules, the flag's reference."""
    msg = case.message
    settings = await store.get_settings(msg.server_id) or ServerSettings(platform=msg.platform, server_id=msg.server_id)
    briefs: list[PolicyBrief] = []
    for name, version in dict.fromkeys((v.policy, v.policy_version) for v in case.verdicts):
        match = next((p for p in await store.policy_versions(msg.server_id, name) if p.version == version), None)
        if match is not None:
            briefs.append(policy_brief(match))
    flag = next(
        (r.reference for r in case.effects if r.effect.kind is EffectKind.FLAG and r.reference is not None), None
    )
    return EffectContext(case=case, settings=settings, policies=tuple(briefs), flag_reference=flag)
