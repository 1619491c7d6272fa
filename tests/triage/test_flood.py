"""The duplicate-flood detector: near-copies across channels, in time, within bounds."""

from __future__ import annotations

from bot.triage.config import DuplicateFloodRule
from bot.triage.flood import DuplicateFloodDetector, similarity, text_sketch
from tests.triage.helpers import message

SPAM = "FREE skins giveaway!! join now and claim your reward before it ends"
RULE = DuplicateFloodRule(min_channels=3, window_seconds=30)


def post(detector: DuplicateFloodDetector, text: str, channel: str, at: float, **kw: object) -> int | None:
    hit = detector.observe(message(text, channel=channel, message_id=f"{channel}-{at}", at=at, **kw), RULE)  # type: ignore[arg-type]
    return hit.channels if hit else None


def test_three_channels_within_the_window_is_a_flood_and_the_next_copy_too() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, SPAM, "a", 0) is None
    assert post(detector, SPAM, "b", 1) is None
    assert post(detector, SPAM, "c", 2) == 3
    assert post(detector, SPAM, "d", 3) == 4


def test_near_copies_count_changed_digits_case_spacing_and_a_random_suffix() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, SPAM + " 123", "a", 0) is None
    assert post(detector, SPAM.upper().replace(" ", "  ") + " 987", "b", 1) is None
    assert post(detector, SPAM + " xq7", "c", 2) == 3


def test_different_texts_are_not_a_flood() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, "anyone up for ranked tonight after dinner?", "a", 0) is None
    assert post(detector, "the new patch notes are out, check the forum", "b", 1) is None
    assert post(detector, "my cat just knocked my coffee onto the keyboard", "c", 2) is None


def test_copies_in_one_channel_are_not_a_cross_channel_flood() -> None:
    detector = DuplicateFloodDetector()
    for second in range(5):
        assert post(detector, SPAM, "a", second) is None


def test_copies_further_apart_than_the_window_do_not_count() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, SPAM, "a", 0) is None
    assert post(detector, SPAM, "b", 20) is None
    assert post(detector, SPAM, "c", 40) is None  # "a" is 40 s before: outside the 30 s window
    assert post(detector, SPAM, "d", 45) == 3  # b, c, d


def test_time_is_the_platforms_not_the_clocks_so_a_late_backlog_sees_the_real_gaps() -> None:
    detector = DuplicateFloodDetector()
    # Written an hour apart, judged in the same instant: not a flood.
    for hour in range(3):
        assert post(detector, SPAM, f"c{hour}", hour * 3600.0) is None


def test_other_authors_and_other_servers_are_separate() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, SPAM, "a", 0, author="u1") is None
    assert post(detector, SPAM, "b", 1, author="u2") is None
    assert post(detector, SPAM, "c", 2, server="s2") is None


def test_edits_replays_and_short_texts_are_not_posts() -> None:
    detector = DuplicateFloodDetector()
    assert post(detector, SPAM, "a", 0) is None
    assert detector.observe(message(SPAM, channel="a", message_id="a-0", at=0), RULE) is None  # replayed
    assert post(detector, SPAM, "b", 1, edited=True) is None
    assert post(detector, SPAM, "c", 2) is None  # only a and c are posts
    for channel in "xyz":
        assert post(detector, "gm", channel, 3) is None


def test_memory_is_bounded_by_authors_and_posts_and_expires() -> None:
    detector = DuplicateFloodDetector(max_authors=10, max_posts_per_author=4)
    for i in range(50):
        post(detector, f"{SPAM} {i}", f"c{i}", float(i) * 0.01, author=f"u{i}")
    assert len(detector) == 10
    for i in range(20):
        post(detector, SPAM, f"c{i}", 1.0 + i * 0.01, author="busy")
    assert len(detector._posts[("discord", "s1", "busy")]) == 4
    post(detector, SPAM, "late", 1000.0, author="someone")
    assert len(detector) == 1  # everyone else's posts expired


def test_a_long_window_on_one_server_is_not_cut_short_by_another_servers_short_window() -> None:
    detector = DuplicateFloodDetector()
    long_rule = DuplicateFloodRule(min_channels=2, window_seconds=600)
    short_rule = DuplicateFloodRule(min_channels=2, window_seconds=5)
    assert detector.observe(message(SPAM, server="slow", channel="a", at=0), long_rule) is None
    assert detector.observe(message("other text entirely here", server="fast", at=100), short_rule) is None
    hit = detector.observe(message(SPAM, server="slow", channel="b", message_id="m2", at=200), long_rule)
    assert hit is not None and hit.channels == 2


def test_sketch_similarity_is_high_for_copies_and_low_for_strangers() -> None:
    a = text_sketch(SPAM)
    assert similarity(a, text_sketch(SPAM + " !!!")) > 0.9
    assert similarity(a, text_sketch("the raid starts at nine, bring potions")) < 0.2
    assert similarity(a, frozenset()) == 0.0
    long_text = "spam " * 2000
    assert len(text_sketch(long_text)) <= 64
