"""The console's adapter: effects and mod-channel notices are printed, never carried out."""

from __future__ import annotations

import sys
from typing import TextIO

from adapters.console.render import ConsoleModChannel, shown_id, shown_ids
from bot.domain import Effect, EffectContext, EffectKind, EffectOutcome, EffectResult, ServerSettings
from bot.notices import Notice
from bot.sanitise import safe_inline


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
            brief = context.policy(effect.policy)
            # A sensitive policy's flag quotes nothing of the content, not even the model's rationale.
            reason = (
                "(sensitive: no excerpt)" if brief is not None and brief.sensitive else safe_inline(effect.reason, 200)
            )
            notice = f" notice={brief.author_notice.value}" if brief and effect.kind is EffectKind.NOTIFY_AUTHOR else ""
            if effect.kind is EffectKind.UPDATE_FLAG:
                notice = (
                    f" post={shown_id(context.flag_reference)} status={case.status.value}"
                    f" by={shown_id(case.decided_by)}"
                )
                if context.joins.count:
                    notice += f" repeats={context.joins.count}"
                if case.notes:  # the author edited or deleted the message since the flag
                    notice += f" message={case.notes[-1].kind.value}"
            if effect.kind is EffectKind.DM_MODERATORS and effect.dm_summary is not None:
                notice = f" raid={effect.dm_summary.words()!r}"
            print(
                f"[effect] case {shown_id(case.id)} {effect.kind.value}{minutes} policy={shown_id(effect.policy)}"
                f" rules={shown_ids(effect.rule_ids)}{notice} reason={reason!r}",
                file=self._out,
            )
        reference = f"console/{case.id}" if effect.kind is EffectKind.FLAG else None
        return EffectResult(outcome=EffectOutcome.DONE, detail="printed by the console adapter", reference=reference)


class ConsoleAdapter(ConsoleEffectSink):
    """The console's EffectSink and ModChannel in one object, as every platform adapter gives the core."""

    def __init__(self, out: TextIO | None = None, enabled: bool = True, notices_as_json: bool = False) -> None:
        super().__init__(out, enabled)
        self.mod_channel = ConsoleModChannel(as_json=notices_as_json)

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        return await self.mod_channel.post(server, notice)
