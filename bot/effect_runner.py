"""Carrying out a case's effects at most once: intent written before the adapter acts, result after."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bot.domain import Case, EffectOutcome, EffectRecord
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
    for rec in pending:
        await store.set_effect_outcome(case.id, rec.id, EffectOutcome.STARTED)
        sink = sinks.get(case.message.platform)
        if sink is None:
            outcome, detail = EffectOutcome.UNSUPPORTED, f"no adapter for platform {case.message.platform!r}"
        else:
            try:
                result = await sink.execute(rec.effect, case)
                outcome, detail = EffectOutcome(result.outcome), result.detail
            except Exception as exc:
                log.warning("effect %s of case %s failed: %s", rec.effect.kind, case.id, type(exc).__name__)
                outcome, detail = EffectOutcome.FAILED, f"{type(exc).__name__}: {exc}"[:500]
        last = rec is pending[-1]
        await store.set_effect_outcome(
            case.id, rec.id, outcome, detail, finish_queue_id=finish_queue_id if last else None
        )
        done[rec.id] = rec.model_copy(update={"outcome": outcome, "detail": detail})
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
