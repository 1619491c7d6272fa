from __future__ import annotations

from bot.domain import (
    Confidence,
    EffectKind,
    EffectRule,
    Mode,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.effects import decide_effects, review_flag


def verdict(
    policy: str = "harassment",
    violation: bool = True,
    confidence: Confidence = Confidence.HIGH,
    status: VerdictStatus = VerdictStatus.DECIDED,
) -> Verdict:
    return Verdict(
        policy=policy,
        policy_version=1,
        violation=violation,
        confidence=confidence,
        rule_ids=("HB1.a",) if violation else (),
        rationale="because",
        status=status,
    )


SETTINGS = ServerSettings(platform="discord", server_id="s1")


def kinds(effects: list) -> list[EffectKind]:  # type: ignore[type-arg]
    return [e.kind for e in effects]


def test_default_is_flag_only_nothing_deleted() -> None:
    effects = decide_effects([verdict()], SETTINGS)
    assert kinds(effects) == [EffectKind.FLAG]
    assert effects[0].rule_ids == ("HB1.a",) and effects[0].reason == "because" and not effects[0].shadow


def test_no_violation_no_effect() -> None:
    assert decide_effects([verdict(violation=False)], SETTINGS) == []
    assert decide_effects([], SETTINGS) == []


def test_unusable_model_output_is_flagged_for_a_human() -> None:
    effects = decide_effects([verdict(violation=False, status=VerdictStatus.NEEDS_REVIEW)], SETTINGS)
    assert kinds(effects) == [EffectKind.FLAG]


def test_opted_in_rules_by_confidence_and_policy_in_execution_order() -> None:
    settings = SETTINGS.model_copy(
        update={
            "effect_rules": (
                EffectRule(min_confidence=Confidence.LOW, effects=(EffectKind.FLAG,)),
                EffectRule(
                    min_confidence=Confidence.HIGH,
                    policies=("spam-scams",),
                    effects=(EffectKind.NOTIFY_AUTHOR, EffectKind.DELETE, EffectKind.TIMEOUT),
                    timeout_minutes=60,
                ),
            )
        }
    )
    assert kinds(decide_effects([verdict("harassment")], settings)) == [EffectKind.FLAG]
    assert kinds(decide_effects([verdict("spam-scams", confidence=Confidence.MEDIUM)], settings)) == [EffectKind.FLAG]
    effects = decide_effects([verdict("spam-scams")], settings)
    assert kinds(effects) == [EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR]
    assert effects[2].timeout_minutes == 60


def test_longest_timeout_wins_and_one_effect_per_kind() -> None:
    settings = SETTINGS.model_copy(
        update={
            "effect_rules": (
                EffectRule(effects=(EffectKind.TIMEOUT,), timeout_minutes=10),
                EffectRule(policies=("violent-threats",), effects=(EffectKind.TIMEOUT,), timeout_minutes=1440),
            )
        }
    )
    effects = decide_effects([verdict("harassment"), verdict("violent-threats")], settings)
    assert kinds(effects) == [EffectKind.TIMEOUT] and effects[0].timeout_minutes == 1440


def test_shadow_mode_server_and_policy() -> None:
    shadow_server = SETTINGS.model_copy(update={"mode": Mode.SHADOW})
    assert all(e.shadow for e in decide_effects([verdict()], shadow_server))
    effects = decide_effects([verdict("harassment")], SETTINGS, {"harassment": Mode.SHADOW})
    assert effects[0].shadow
    # An enforcing policy's flag is not weakened by a shadow policy's flag on the same message.
    both = decide_effects([verdict("harassment"), verdict("spam-scams")], SETTINGS, {"harassment": Mode.SHADOW})
    assert kinds(both) == [EffectKind.FLAG] and not both[0].shadow


def test_a_support_policy_never_deletes_or_times_out() -> None:
    settings = SETTINGS.model_copy(
        update={
            "effect_rules": (
                EffectRule(effects=(EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR)),
            )
        }
    )
    effects = decide_effects([verdict("self-harm")], settings, support_policies={"self-harm"})
    assert kinds(effects) == [EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR]
    assert effects[1].policy == "self-harm"  # the sink words it as the policy's support message
    # A removal policy that flagged too still removes, and its notice (with the appeal) is the one sent.
    both = decide_effects(
        [verdict("self-harm"), verdict("harassment", confidence=Confidence.MEDIUM)],
        settings,
        support_policies={"self-harm"},
    )
    assert kinds(both) == [EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR]
    assert both[3].policy == "harassment"


def test_a_violation_citing_no_rule_of_the_policy_is_flagged_and_nothing_else() -> None:
    settings = SETTINGS.model_copy(
        update={
            "effect_rules": (
                EffectRule(
                    min_confidence=Confidence.LOW,
                    effects=(EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR),
                ),
            )
        }
    )
    effects = decide_effects([verdict()], settings, review_only={"harassment"})
    assert kinds(effects) == [EffectKind.FLAG]
    assert effects[0].rule_ids == ("HB1.a",) and effects[0].reason == "because"
    # Another policy's grounded violation still acts.
    both = decide_effects([verdict(), verdict(policy="spam")], settings, review_only={"harassment"})
    assert kinds(both) == [EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR]
    assert both[1].policy == "spam"


def test_a_review_flag_is_posted_whatever_the_rules_but_shadow_mode_holds() -> None:
    delete_only = SETTINGS.model_copy(update={"effect_rules": (EffectRule(effects=(EffectKind.DELETE,)),)})
    flag = review_flag(delete_only, "internal error: RuntimeError: boom")
    assert flag.kind is EffectKind.FLAG and flag.reason == "internal error: RuntimeError: boom" and not flag.shadow
    assert review_flag(SETTINGS.model_copy(update={"mode": Mode.SHADOW}), "x").shadow
