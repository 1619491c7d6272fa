"""The console's effect sink: prints what would happen instead of doing it."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.domain import Effect, EffectContext, EffectKind, EffectOutcome, EffectResult
from bot.sanitise import safe_echo


class ConsoleEffectSink:
    platform = "console"

    def __init__(self, out: TextIO | None = None, enabled: bool = True) -> None:
        self._out = out or sys.stderr
        self._enabled = enabled

    @property
    def supported_effects(self) -> frozenset[EffectKind]:
        return frozenset(EffectKind)  # printing can stand in for any effect

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        case = context.case
        if self._enabled:
            minutes = f" {effect.timeout_minutes}min" if effect.timeout_minutes else ""
            print(
                f"[effect] case {case.id} {effect.kind.value}{minutes} policy={effect.policy}"
                f" rules={','.join(effect.rule_ids)} reason={safe_echo(effect.reason, 200)!r}",
                file=self._out,
            )
        return EffectResult(outcome=EffectOutcome.DONE, detail="printed by the console adapter")
