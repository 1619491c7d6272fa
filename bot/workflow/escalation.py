"""The strike ladder: repeat confirmed violations by one author bring stronger effects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.domain import Effect, EffectKind, StrikeLadder, StrikeStep


def window(ladder: StrikeLadder) -> timedelta:
    return timedelta(days=ladder.window_days)


def step_for(ladder: StrikeLadder, strikes: int) -> StrikeStep | None:
    """The highest step the author has reached, or None (ladder off or too few strikes)."""
    if not ladder.enabled:
        return None
    reached = [s for s in ladder.steps if s.strikes <= strikes]
    return reached[-1] if reached else None


def strike_effects(step: StrikeStep, strikes: int, ladder: StrikeLadder, *, shadow: bool) -> list[Effect]:
    reason = f"strike {strikes} within {ladder.window_days} days (ladder step from {step.strikes} strikes)"
    return [
        Effect(
            kind=kind,
            reason=reason,
            shadow=shadow,
            timeout_minutes=step.timeout_minutes if kind is EffectKind.TIMEOUT else None,
        )
        for kind in step.effects
    ]


def merge(effects: Sequence[Effect]) -> list[Effect]:
    """One effect per kind; the longest timeout wins, and an executed effect beats a shadow one."""
    chosen: dict[EffectKind, Effect] = {}
    for effect in effects:
        have = chosen.get(effect.kind)
        if have is None:
            chosen[effect.kind] = effect
            continue
        keep = effect if (effect.timeout_minutes or 0) > (have.timeout_minutes or 0) else have
        chosen[effect.kind] = keep.model_copy(
            update={
                "shadow": have.shadow and effect.shadow,
                "reason": "; ".join(r for r in (have.reason, effect.reason) if r),
                "requested_by": have.requested_by or effect.requested_by,
            }
        )
    return list(chosen.values())
