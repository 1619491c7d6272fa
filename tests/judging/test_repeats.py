"""The repeat memory on its own: which verdict may stand for which text, for how long, at what size."""

from __future__ import annotations

import asyncio

from bot.domain import Verdict, VerdictStatus
from bot.repeats import PolicyScope, RepeatMemory
from bot.text import RepeatKeys

SCOPE: PolicyScope = ("console", "s1", "low", "harassment", 1)
CLEAN = Verdict(policy="harassment", policy_version=1, rationale="fine")
VIOLATION = Verdict(policy="harassment", policy_version=1, violation=True, rule_ids=("HB1.a",))
REVIEW = Verdict(policy="harassment", policy_version=1, status=VerdictStatus.NEEDS_REVIEW, rationale="timed out")


def keys(clean: str, violation: str = "v") -> RepeatKeys:
    return RepeatKeys(clean=clean, violation=violation)


async def remember(memory: RepeatMemory, k: RepeatKeys, verdict: Verdict | None, window: float = 600) -> None:
    memory.end(memory.begin(SCOPE, k), verdict, window)


async def test_a_pass_stands_only_for_its_own_text_and_a_flag_for_near_repeats() -> None:
    memory = RepeatMemory()
    await remember(memory, keys("a", "v1"), CLEAN)
    await remember(memory, keys("b", "v2"), VIOLATION)
    assert memory.recall(SCOPE, keys("a", "v1")) is not None
    assert memory.recall(SCOPE, keys("a2", "v1")) is None  # same skeleton, other text: no pass
    near = memory.recall(SCOPE, keys("b2", "v2"))
    assert near is not None and near.verdict.violation and near.near_repeat
    same = memory.recall(SCOPE, keys("b", "v2"))
    assert same is not None and not same.near_repeat


async def test_a_review_is_never_remembered_and_scopes_do_not_mix() -> None:
    memory = RepeatMemory()
    await remember(memory, keys("a"), REVIEW)
    assert memory.recall(SCOPE, keys("a")) is None
    await remember(memory, keys("b"), VIOLATION)
    for other in (("console", "s2", "low", "harassment", 1), ("discord", "s1", "low", "harassment", 1)):
        assert memory.recall(other, keys("b")) is None
    assert memory.recall(("console", "s1", "high", "harassment", 1), keys("b")) is None
    assert memory.recall(("console", "s1", "low", "harassment", 2), keys("b")) is None


async def test_entries_expire_and_the_memory_stays_bounded() -> None:
    now = [0.0]
    memory = RepeatMemory(clock=lambda: now[0], max_entries=50)
    for i in range(10):
        await remember(memory, keys(f"t{i}", f"v{i}"), VIOLATION)
    assert memory.recall(SCOPE, keys("t3", "v3")) is not None
    now[0] = 601.0
    assert memory.recall(SCOPE, keys("t3", "v3")) is None
    await remember(memory, keys("new", "vn"), CLEAN)
    assert len(memory) == 1  # the stale ones went on the next write, not at a size limit
    for i in range(200):
        await remember(memory, keys(f"x{i}", f"w{i}"), VIOLATION)
    assert len(memory) <= 2 * 50 + 2


async def test_waiters_on_the_same_text_take_any_answer_and_near_repeats_only_a_violation() -> None:
    memory = RepeatMemory()
    first = memory.begin(SCOPE, keys("a", "v"))
    same = asyncio.create_task(memory.recall_or_wait(SCOPE, keys("a", "v")))
    near = asyncio.create_task(memory.recall_or_wait(SCOPE, keys("a2", "v")))
    await asyncio.sleep(0)
    memory.end(first, REVIEW, 600)  # the stuck call's answer: for those already waiting only
    same_result, near_result = await same, await near
    assert same_result is not None and same_result.verdict is REVIEW
    assert near_result is None  # not a violation: the near-repeat asks the model itself
    assert memory.recall(SCOPE, keys("a", "v")) is None


async def test_a_failed_call_wakes_its_waiters_to_ask_for_themselves() -> None:
    memory = RepeatMemory()
    first = memory.begin(SCOPE, keys("a", "v"))
    waiter = asyncio.create_task(memory.recall_or_wait(SCOPE, keys("a", "v")))
    await asyncio.sleep(0)
    memory.end(first, None, 600)
    assert await waiter is None


async def test_a_cancelled_waiter_does_not_cancel_the_call_others_wait_for() -> None:
    memory = RepeatMemory()
    first = memory.begin(SCOPE, keys("a", "v"))
    cancelled = asyncio.create_task(memory.recall_or_wait(SCOPE, keys("a", "v")))
    other = asyncio.create_task(memory.recall_or_wait(SCOPE, keys("a", "v")))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    memory.end(first, VIOLATION, 600)
    result = await other
    assert result is not None and result.verdict is VIOLATION
