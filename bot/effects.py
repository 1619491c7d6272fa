"""From verdicts to effects: a pure function of the verdicts and the server's settings."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bot.domain import Effect, EffectKind, Mode, ServerSettings, Verdict, VerdictStatus

# Tell moderators before anything irreversible, and tell the author last, once the
# other effects are settled.
EXECUTION_ORDER = (
    EffectKind.FLAG,
    EffectKind.DM_MODERATORS,
    EffectKind.DELETE,
    EffectKind.TIMEOUT,
    EffectKind.NOTIFY_AUTHOR,
)
# What a policy with a SUPPORT notice (self-harm) may lead to: the author is offered help,
# moderators are told; nothing is removed and nobody is punished for it.
SUPPORT_EFFECTS = frozenset({EffectKind.FLAG, EffectKind.DM_MODERATORS, EffectKind.NOTIFY_AUTHOR})


def review_flag(settings: ServerSettings, reason: str, policy: str | None = None) -> Effect:
    """The flag that puts a case before a human when no verdict can decide it (the model's
    output unusable, a stuck call, an internal error): always, whatever the effect rules say.

    Shadow mode still holds: a server that asked for nothing to be posted gets nothing posted.
    """
    return Effect(kind=EffectKind.FLAG, policy=policy, reason=reason, shadow=settings.mode is Mode.SHADOW)


def decide_effects(
    verdicts: Sequence[Verdict],
    settings: ServerSettings,
    policy_modes: Mapping[str, Mode | None] | None = None,
    support_policies: Collection[str] = (),
    review_only: Collection[str] = (),
) -> list[Effect]:
    """Which effects the verdicts call for, one per kind, in execution order.

    A verdict the model could not give is always flagged for a human. A policy (or the
    whole server) in shadow mode yields effects marked shadow: recorded, never executed.
    A verdict of a policy in `support_policies` (author notice SUPPORT) never deletes or
    times out, whatever the rules say. When such a policy and another both ask to notify
    the author, the other's removal notice is the one sent (it carries the appeal).
    A violation of a policy in `review_only` (it cites no rule the policy defines) is
    flagged for a human and nothing else: nothing automatic rests on a rule that is not there.
    """
    modes = policy_modes or {}
    chosen: dict[EffectKind, Effect] = {}

    def add(effect: Effect) -> None:
        have = chosen.get(effect.kind)
        if have is None:
            chosen[effect.kind] = effect
            return
        if effect.kind is EffectKind.NOTIFY_AUTHOR and have.policy in support_policies:
            # A removal notice outranks a support one: the author must learn of the removal and the appeal.
            have, effect = effect, have
        # Enforcing beats shadow; a longer timeout beats a shorter one.
        minutes = max(have.timeout_minutes or 0, effect.timeout_minutes or 0) or None
        keep = effect if have.shadow and not effect.shadow else have
        chosen[effect.kind] = keep.model_copy(
            update={"shadow": have.shadow and effect.shadow, "timeout_minutes": minutes}
        )

    ranked = sorted(verdicts, key=lambda v: v.confidence.rank, reverse=True)
    for verdict in ranked:
        shadow = settings.mode is Mode.SHADOW or modes.get(verdict.policy) is Mode.SHADOW
        if verdict.status is VerdictStatus.NEEDS_REVIEW:
            add(Effect(kind=EffectKind.FLAG, policy=verdict.policy, reason=verdict.rationale, shadow=shadow))
            continue
        if not verdict.violation:
            continue
        if verdict.policy in review_only:
            review = Effect(
                kind=EffectKind.FLAG,
                policy=verdict.policy,
                rule_ids=verdict.rule_ids,
                reason=verdict.rationale,
                shadow=shadow,
            )
            add(review)
            continue
        for rule in settings.effect_rules:
            if rule.policies is not None and verdict.policy not in rule.policies:
                continue
            if verdict.confidence.rank < rule.min_confidence.rank:
                continue
            for kind in rule.effects:
                if verdict.policy in support_policies and kind not in SUPPORT_EFFECTS:
                    continue
                add(
                    Effect(
                        kind=kind,
                        policy=verdict.policy,
                        rule_ids=verdict.rule_ids,
                        reason=verdict.rationale,
                        timeout_minutes=rule.timeout_minutes if kind is EffectKind.TIMEOUT else None,
                        shadow=shadow,
                    )
                )
    return [chosen[kind] for kind in EXECUTION_ORDER if kind in chosen]
