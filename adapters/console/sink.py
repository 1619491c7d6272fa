"""The console's effect sink: prints what would happen instead of doing it."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.domain import Case, Effect, EffectOutcome, EffectResult
from bot.sanitise import safe_echo


class ConsoleEffectSink:
    platform = "console"

    def __init__(self, out: TextIO | None = None, enabled: bool = True) -> None:
        self._out = out or sys.stderr
        self._enabled = enabled

    async def execute(self, effect: Effect, case: Case) -> EffectResult:
        if self._enabled:
            minutes = f" {effect.timeout_minutes}min" if effect.timeout_minutes else ""
            print(
                f"[effect] case {case.id} {effect.kind.value}{minutes} policy={effect.policy}"
                f" rules={','.join(effect.rule_ids)} reason={safe_echo(effect.reason, 200)!r}",
                file=self._out,
            )
        return EffectResult(outcome=EffectOutcome.DONE, detail="printed by the console adapter")
