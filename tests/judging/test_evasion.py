"""Issue 7 §2: what the model judges is what the repeat memory keys."""

from __future__ import annotations

from bot.classifier import ClassificationRequest
from bot.domain import CaseStatus, Confidence, Verdict
from bot.store.sqlite import SqliteStore
from tests.helpers import make_message
from tests.judging.conftest import PipelineFactory, PostingSink, ReadingModel, all_cases, settle


async def test_the_model_reads_through_the_disguise(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    """A model that matches only what it is shown flags `i\\u200bd\\u200bi\\u200bo\\u200bt` once it is shown the view;
    then neither `you idiot` nor `YOU ｉｄｉｏｔ` can borrow a pass (before: all three passed)."""
    pipeline = await make_pipeline()
    for n, text in enumerate(["you i\u200bd\u200bi\u200bo\u200bt", "you idiot", "YOU ｉｄｉｏｔ"]):
        await pipeline.submit(make_message(f"m{n}", text, author=f"u{n}"))
        await settle(pipeline)
    cases = await all_cases(store)
    assert [c.status for c in cases] == [CaseStatus.OPEN] * 3
    assert model.seen[0]["text"] == "you idiot"
    assert model.seen[0]["original"] == "you i⟨1 invisible⟩d⟨1 invisible⟩i⟨1 invisible⟩o⟨1 invisible⟩t"
    assert model.seen[0]["normalisation"] == "invisible characters removed"
    assert "invisible characters removed" in cases[0].judging_notes


async def test_a_clean_verdict_never_whitelists_another_spelling(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    """Even if the model passed the disguised spelling, the plain ones are each judged: a clean
    verdict stands only for the normalised text the model read."""

    def fooled_once(request: ClassificationRequest, content: dict[str, object]) -> Verdict | None:
        if len(model.calls) == 1:
            return Verdict(policy=request.policy.name, policy_version=request.policy.version, rationale="fine")
        return None

    model.answer = fooled_once
    pipeline = await make_pipeline()
    for n, text in enumerate(["i\u200bd\u200bi\u200bo\u200bt", "you idiot", "YOU ｉｄｉｏｔ", "you  idiot\u200b"]):
        await pipeline.submit(make_message(f"m{n}", text, author=f"u{n}"))
        await settle(pipeline)
    first, plain, fullwidth, again = await all_cases(store)
    assert first.status is CaseStatus.CLEAN
    assert plain.status is CaseStatus.OPEN and not plain.verdicts[0].reused
    # A violation stands for near-repeats: the fullwidth spelling borrows the plain one's flag.
    assert fullwidth.status is CaseStatus.OPEN and fullwidth.verdicts[0].reused
    assert "verdict reused from a near-repeat's violation" in fullwidth.judging_notes
    # The same normalised text as the plain one: reused as the same text.
    assert again.verdicts[0].reused and "verdict reused from the same text" in again.judging_notes
    assert len(model.calls) == 2


async def test_a_rose_never_stands_for_a_knife(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    pipeline = await make_pipeline()
    for n, text in enumerate(["I'll 🌹 you", "I'll 🔪 you", "I'll 🌹 you!!", "i'll 🔪 YOU 2"]):
        await pipeline.submit(make_message(f"m{n}", text, author=f"u{n}"))
        await settle(pipeline)
    rose, knife, rose_again, knife_again = await all_cases(store)
    assert rose.status is CaseStatus.CLEAN and knife.status is CaseStatus.OPEN
    assert not knife.verdicts[0].reused  # the rose's pass did not stand for the knife
    assert rose_again.status is CaseStatus.CLEAN and not rose_again.verdicts[0].reused  # a pass is exact
    assert knife_again.status is CaseStatus.OPEN and knife_again.verdicts[0].reused  # a flag is not
    assert len(model.calls) == 3


async def test_twelve_and_twenty_one_may_share_a_flag_never_a_pass(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    model.bad = ("12",)
    pipeline = await make_pipeline()
    for n, text in enumerate(["I'm 12, dm me", "I'm 21, dm me", "I'm 21, dm me pls", "I'm 12, dm me pls"]):
        await pipeline.submit(make_message(f"m{n}", text, author=f"u{n}"))
        await settle(pipeline)
    twelve, twenty_one, pass_first, flag_second = await all_cases(store)
    assert twelve.status is CaseStatus.OPEN
    assert twenty_one.status is CaseStatus.OPEN and twenty_one.verdicts[0].reused  # shares the flag
    assert pass_first.status is CaseStatus.CLEAN and not pass_first.verdicts[0].reused
    assert flag_second.status is CaseStatus.OPEN and not flag_second.verdicts[0].reused  # never the pass
    assert len(model.calls) == 3


async def test_a_violation_for_one_policy_is_reused_while_the_other_is_asked_again(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    from tests.helpers import add_policy

    await add_policy(store, "s1", "spam", "# Spam (SP)\n## VIOLATES (1)\n- SP1.a: Links to scams.\n")

    def spam_says_no(request: ClassificationRequest, content: dict[str, object]) -> Verdict | None:
        if request.policy.name == "spam":
            return Verdict(policy="spam", policy_version=1, rationale="no link", confidence=Confidence.HIGH)
        return None

    model.answer = spam_says_no
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    await pipeline.submit(make_message("m2", "YOU ｉｄｉｏｔ!", author="u2"))
    await settle(pipeline)
    _, second = await all_cases(store)
    by_policy = {v.policy: v for v in second.verdicts}
    assert by_policy["harassment"].reused and by_policy["harassment"].violation
    assert not by_policy["spam"].reused  # a pass for another spelling is not this one's
    assert sorted(r.policy.name for r in model.calls) == ["harassment", "spam", "spam"]


async def test_concurrent_variants_wait_for_the_call_in_flight(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    """A raid arriving at once: its variants (other clean keys, one violation key) wait for the one call."""
    import asyncio

    model.gate = asyncio.Event()
    pipeline = await make_pipeline()
    variants = ["join my scam, idiot", "JOIN my scam, idiot!!", "join my sc\u200bam, idiot 7", "jоin my scаm, idiot"]
    for n, text in enumerate(variants):
        await pipeline.submit(make_message(f"r{n}", text, author=f"bot{n}"))
    await asyncio.sleep(0.05)
    model.gate.set()
    await settle(pipeline)
    assert len(model.calls) == 1
    assert all(c.status is CaseStatus.OPEN for c in await all_cases(store))


async def test_a_variant_waiting_on_a_clean_call_asks_for_itself(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    """Sharing a violation key with a call that comes back clean is no pass: the waiter is judged itself."""
    import asyncio

    model.gate = asyncio.Event()
    pipeline = await make_pipeline(workers=2)
    await pipeline.submit(make_message("m1", "you i.diot"))  # the model sees no insult in it
    await pipeline.submit(make_message("m2", "you idiot", author="u2"))
    await asyncio.sleep(0.05)
    model.gate.set()
    await settle(pipeline)
    first, second = await all_cases(store)
    assert first.status is CaseStatus.CLEAN
    assert second.status is CaseStatus.OPEN and not second.verdicts[0].reused
    assert len(model.calls) == 2


def test_every_fullwidth_letter_keys_as_its_letter() -> None:
    """ICU has no look on record for fullwidth `ｄ` `ｆ` `ｑ` `ｒ` `ｕ` `ｗ`: they count by their NFKC letter,
    so `YOU ｉｄｉｏｔ` is a near-repeat of `you idiot` (it was not: `ｄ` kept a class of its own)."""
    import string

    from bot.text import violation_skeleton

    for letter in string.ascii_letters:
        offset = ord(letter) - (ord("A") if letter.isupper() else ord("a"))
        fullwidth = chr((0xFF21 if letter.isupper() else 0xFF41) + offset)
        assert violation_skeleton(fullwidth) == violation_skeleton(letter), letter
