"""Carrying out a case's effects at most once: intent written before the adapter acts, result after.

Every effect, the pipeline's and those a person asked for (a confirm, an appeal decision),
runs through here: claimed (pending -> started) before the adapter is called, so that no
effect runs twice, even when two tasks find it pending at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from bot.domain import (
    AuthorNotice,
    Case,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    Policy,
    PolicyBrief,
    RuleText,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.observability.logs import bound_case
from bot.platforms import PlatformRouter
from bot.policy_format import rules_in
from bot.ports import EffectSink
from bot.store.ports import ModerationStore, Repositories

log = logging.getLogger(__name__)

INTERRUPTED_DETAIL = "interrupted by a restart; not retried (it may or may not have happened)"
# How far back the author's record beside a flag reaches.
HISTORY_DAYS = 30


async def carry_out(
    store: ModerationStore,
    sinks: Mapping[str, EffectSink] | PlatformRouter,
    case: Case,
    records: Sequence[EffectRecord],
    finish_queue_id: int | None = None,
) -> list[EffectRecord]:
    """Run each pending effect once. With finish_queue_id, the last result also completes the queue item.

    When the case's platform is declared but runs in another process, its effects stay
    pending: that process carries them out (`carry_out_waiting`). Every line logged
    meanwhile, the adapters' included, carries the case's and its message's ids.
    """
    with bound_case(case):
        return await _carry_out(store, sinks, case, records, finish_queue_id)


async def _carry_out(
    store: ModerationStore,
    sinks: Mapping[str, EffectSink] | PlatformRouter,
    case: Case,
    records: Sequence[EffectRecord],
    finish_queue_id: int | None,
) -> list[EffectRecord]:
    router = PlatformRouter.of(sinks)
    platform = case.message.platform
    pending = [r for r in records if r.outcome is EffectOutcome.PENDING]
    if pending and router.runs_elsewhere(platform):
        if finish_queue_id is not None:
            await store.finish_queue_item(finish_queue_id)
        waiting = f"waits for the {platform} adapter (not running in this process)"
        return [r.model_copy(update={"detail": waiting}) if r in pending else r for r in records]
    if not pending and finish_queue_id is not None:
        await store.finish_queue_item(finish_queue_id)
    done: dict[int, EffectRecord] = {}
    # The context reads the case's effects (the flag's reference, a DM's summary): those of
    # `records` the caller's copy of the case does not list yet (a new decision's) count too.
    listed = {r.id for r in case.effects}
    unlisted = tuple(r for r in records if r.id not in listed)
    current = case.model_copy(update={"effects": (*case.effects, *unlisted)}) if unlisted else case
    context = await build_context(store, current) if pending else None
    for rec in pending:
        last = rec is pending[-1]
        if not await store.effects.claim(case.id, rec.id):
            # Another task holds it (or finished it): never run an effect twice.
            if last and finish_queue_id is not None:
                await store.finish_queue_item(finish_queue_id)
            continue
        sink = router.get(platform)
        reference: str | None = None
        if sink is None:
            outcome, detail = EffectOutcome.UNSUPPORTED, f"no adapter for platform {platform!r}"
        else:
            try:
                assert context is not None
                result = await sink.execute(rec.effect, context)
                outcome, detail, reference = EffectOutcome(result.outcome), result.detail, result.reference
            except Exception as exc:
                log.warning("effect %s of case %s failed: %s", rec.effect.kind, case.id, type(exc).__name__)
                outcome, detail = EffectOutcome.FAILED, f"{type(exc).__name__}: {exc}"[:500]
        await store.effects.set_outcome(
            case.id, rec.id, outcome, detail, finish_queue_id=finish_queue_id if last else None, reference=reference
        )
        done[rec.id] = rec.model_copy(update={"outcome": outcome, "detail": detail, "reference": reference})
    return [done.get(r.id, r) for r in records]


async def resume(
    store: ModerationStore,
    sinks: Mapping[str, EffectSink] | PlatformRouter,
    case: Case,
    finish_queue_id: int | None = None,
) -> list[EffectRecord]:
    """After a crash: an effect found started is marked interrupted, never run again; pending ones run."""
    records = list(case.effects)
    for i, rec in enumerate(records):
        if rec.outcome is EffectOutcome.STARTED:
            await store.effects.set_outcome(case.id, rec.id, EffectOutcome.INTERRUPTED, INTERRUPTED_DETAIL)
            records[i] = rec.model_copy(update={"outcome": EffectOutcome.INTERRUPTED, "detail": INTERRUPTED_DETAIL})
    return await carry_out(store, sinks, case, records, finish_queue_id)


async def carry_out_waiting(store: ModerationStore, router: PlatformRouter) -> int:
    """Effects other processes left pending for a platform this process runs (a confirm from the CLI).

    Only pending effects are taken, each claimed first; a started one belongs to whoever
    started it (at start-up, `resume` deals with those a crash cut short).
    """
    ran = 0
    for case_id in await store.cases_with_unfinished_effects():
        try:
            case = await store.cases.get(case_id)
            if case is None or not router.runs(case.message.platform):
                continue
            records = await carry_out(store, router, case, case.effects)
        except Exception:
            # One case (one server's data) must not keep every other server's effects waiting.
            log.exception("waiting effects of case %s could not be carried out; the other cases go on", case_id)
            continue
        ran += sum(1 for before, after in zip(case.effects, records, strict=True) if before.outcome != after.outcome)
    return ran


def policy_brief(policy: Policy) -> PolicyBrief:
    return PolicyBrief(
        name=policy.name,
        version=policy.version,
        sensitive=policy.sensitive,
        author_notice=policy.author_notice,
        notice_text=policy.notice_text,
        rules=tuple(RuleText(id=r.id, text=r.text) for r in rules_in(policy.text)),
    )


async def policy_briefs(repos: Repositories, case: Case) -> tuple[PolicyBrief, ...]:
    """The policy versions the case's verdicts cite, as a sink words them.

    Rule ids a verdict cites that the version does not define are listed too, marked
    unknown, so that every surface shows them as such.
    """
    msg = case.message
    briefs: list[PolicyBrief] = []
    for name, version in dict.fromkeys((v.policy, v.policy_version) for v in case.verdicts):
        versions = await repos.policies.versions(msg.platform, msg.server_id, name)
        match = next((p for p in versions if p.version == version), None)
        if match is not None:
            cited = [r for v in case.verdicts if (v.policy, v.policy_version) == (name, version) for r in v.rule_ids]
            briefs.append(with_unknown_rules(policy_brief(match), cited))
    return tuple(briefs)


def with_unknown_rules(brief: PolicyBrief, cited: Sequence[str]) -> PolicyBrief:
    defined = {r.id for r in brief.rules}
    unknown = [RuleText(id=r, text="", known=False) for r in dict.fromkeys(cited) if r not in defined]
    return brief.model_copy(update={"rules": brief.rules + tuple(unknown)}) if unknown else brief


def support_only(verdicts: Sequence[Verdict], briefs: Sequence[PolicyBrief]) -> bool:
    """Flagged only by policies whose author notice is SUPPORT (self-harm): never a removal, never a strike."""
    notices = {b.name: b.author_notice for b in briefs}
    flagging = [v for v in verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW]
    return bool(flagging) and all(notices.get(v.policy) is AuthorNotice.SUPPORT for v in flagging)


async def build_context(store: Repositories, case: Case) -> EffectContext:
    """What a sink needs for the case's effects: settings, the cited policies' rules, the author's
    record, the flag's reference, the repeats that joined its flag during a raid (bot.raids), and
    the summary of moderator DMs held back that its DM carries."""
    msg = case.message
    settings = await store.settings.get(msg.platform, msg.server_id) or ServerSettings(
        platform=msg.platform, server_id=msg.server_id
    )
    since = case.created_at - timedelta(days=HISTORY_DAYS)
    history = await store.cases.author_history(
        msg.platform, msg.server_id, msg.author.id, since, exclude_case_id=case.id
    )
    flag = next(
        (r.reference for r in case.effects if r.effect.kind is EffectKind.FLAG and r.reference is not None), None
    )
    dm_summary = next((r.effect.dm_summary for r in case.effects if r.effect.kind is EffectKind.DM_MODERATORS), None)
    return EffectContext(
        case=case,
        settings=settings,
        policies=await policy_briefs(store, case),
        history=history.model_copy(update={"days": HISTORY_DAYS}),
        flag_reference=flag,
        joins=await store.cases.flag_joins(case.id),
        dm_summary=dm_summary,
    )
