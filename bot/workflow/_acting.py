"""Effects a person asked for (confirm, escalation, appeal outcome): their intents, in the caller's transaction.

They are carried out by `bot.effect_runner.carry_out`, like the pipeline's own effects.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from bot.domain import Effect, EffectOutcome, EffectRecord


async def add_intents(
    conn: aiosqlite.Connection, case_id: str, effects: Sequence[Effect], at: str
) -> list[EffectRecord]:
    """Write the effects as pending (or shadow) inside the caller's transaction."""
    async with conn.execute("SELECT COALESCE(MAX(seq), 0) FROM effects WHERE case_id = ?", (case_id,)) as cur:
        row = await cur.fetchone()
    last = int(row[0]) if row else 0
    records = [
        EffectRecord(
            id=last + i,
            case_id=case_id,
            effect=effect,
            outcome=EffectOutcome.SHADOW if effect.shadow else EffectOutcome.PENDING,
        )
        for i, effect in enumerate(effects, start=1)
    ]
    if records:
        await conn.executemany(
            "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(case_id, r.id, r.effect.kind.value, r.effect.model_dump_json(), r.outcome.value, at) for r in records],
        )
    return records
