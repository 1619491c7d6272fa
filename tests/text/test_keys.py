"""Repeat keys: a clean verdict is reused only for the same normalised text; a violation for near-repeats."""

from __future__ import annotations

import functools
import string
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.text import _unicode, clean_key, judged_view, repeat_keys, violation_skeleton
from bot.text.keys import MIN_SKELETON_SYMBOLS, letter_class

SPAM = [
    "FREE nitro for everyone, claim it at discord-gift.example now",
    "you are a worthless idiot and everyone here hates you",
    "I'll 🔪 you tonight, watch your back",
    "dm me for cheap followers and likes, fast delivery",
    "Привет всем! Заходите на наш канал, там бесплатные подарки",
    "send me your password or your account gets deleted today",
    "🔥🔥 hot singles in your area 🔥🔥 click the link",
]
# Zero-width and other invisible characters a raid sprinkles in, by code point.
INVISIBLES = [chr(c) for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0xFE0F, 0xE0020)]
PUNCTUATION = [*string.punctuation, "…", "«", "»", "¡", "¿", "—", "·", "•", "‼"]


@functools.cache
def homoglyphs() -> dict[str, tuple[str, ...]]:
    """Every letter that ICU's UTS #39 data says looks like another, grouped by skeleton."""
    grouped: dict[str, list[str]] = {}
    for char in _unicode.characters("[:L:]"):
        grouped.setdefault(_unicode.skeleton(char), []).append(char)
    return {key: tuple(chars) for key, chars in grouped.items() if len(chars) > 1}


def lookalikes_of(char: str) -> tuple[str, ...]:
    return tuple(c for c in homoglyphs().get(_unicode.skeleton(char), ()) if c != char)


@st.composite
def raid_variant(draw: st.DrawFn) -> tuple[str, str]:
    """A spam text and a variant of it as a raid makes them: case changes of the letters as
    written, then look-alike letters, then inserted invisibles, digits and punctuation."""
    original = draw(st.sampled_from(SPAM))
    chars = list(original)
    for index in draw(st.lists(st.integers(0, len(chars) - 1), max_size=8)):
        chars[index] = chars[index].swapcase() if len(chars[index].swapcase()) == 1 else chars[index]
    for index in draw(st.lists(st.integers(0, len(chars) - 1), max_size=8)):
        candidates = lookalikes_of(chars[index]) if chars[index].isalpha() else ()
        if candidates:
            chars[index] = draw(st.sampled_from(candidates))
    insertions = st.one_of(
        st.sampled_from(INVISIBLES),
        st.sampled_from(string.digits),
        st.sampled_from(PUNCTUATION),
        st.sampled_from(INVISIBLES).map(lambda c: c * 5),
        st.just(" "),
    )
    for _ in range(draw(st.integers(0, 10))):
        chars.insert(draw(st.integers(0, len(chars))), draw(insertions))
    return original, "".join(chars)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raid_variant())
def test_a_raid_variant_keeps_its_violation_key(pair: tuple[str, str]) -> None:
    original, variant = pair
    assert repeat_keys(variant).violation == repeat_keys(original).violation, (original, variant)


@st.composite
def one_letter_or_emoji_changed(draw: st.DrawFn) -> tuple[str, str]:
    """A spam text, and the same text with one letter or emoji replaced, inserted or removed."""
    original = draw(st.sampled_from(SPAM))
    symbols = [i for i, c in enumerate(original) if c.isalpha() or _unicode.is_pictographic(c)]
    index = draw(st.sampled_from(symbols))
    other = draw(
        st.sampled_from(string.ascii_letters + "абвгдежзийклмнопрстуфхцчшщъыьэюя" + "🌹🔪🔥💀😀🎁").filter(
            lambda c: letter_class(c) != letter_class(original[index]) if c.isalpha() else c != original[index]
        )
    )
    action = draw(st.sampled_from(["replace", "insert", "remove"]))
    if action == "replace":
        changed = original[:index] + other + original[index + 1 :]
    elif action == "insert":
        changed = original[:index] + other + original[index:]
    else:
        changed = original[:index] + original[index + 1 :]
    return original, changed


@settings(max_examples=400, deadline=None)
@given(one_letter_or_emoji_changed())
def test_texts_that_differ_in_a_letter_or_an_emoji_never_share_a_key(pair: tuple[str, str]) -> None:
    original, changed = pair
    a, b = repeat_keys(original), repeat_keys(changed)
    assert a.violation != b.violation and a.clean != b.clean, (original, changed)


def test_the_issue_s_examples() -> None:
    rose, knife = repeat_keys("I'll 🌹 you"), repeat_keys("I'll 🔪 you")
    assert rose.violation != knife.violation and rose.clean != knife.clean
    twelve, twenty_one = repeat_keys("I'm 12, dm me"), repeat_keys("I'm 21, dm me")
    assert twelve.violation == twenty_one.violation
    assert twelve.clean != twenty_one.clean


def test_the_issue_s_whitelist_is_closed() -> None:
    """`i\\u200bd\\u200bi\\u200bo\\u200bt` judged clean once must not pass `you idiot` or `YOU ｉｄｉｏｔ`."""
    judged = repeat_keys("i\u200bd\u200bi\u200bo\u200bt").clean
    assert repeat_keys("you idiot").clean != judged
    assert repeat_keys("YOU ｉｄｉｏｔ").clean != judged
    assert repeat_keys("you idiot").clean != repeat_keys("YOU ｉｄｉｏｔ").clean


def test_clean_key_is_exactly_the_normalised_text() -> None:
    view = judged_view("hello  there\u200b")
    assert clean_key(view) == clean_key(judged_view("hello there"))
    assert clean_key(view) != clean_key(judged_view("Hello there"))  # case is part of what was judged
    assert clean_key(view) != clean_key(judged_view("hello there!"))
    assert clean_key(view) != clean_key(judged_view("hello there 2"))


def test_keys_hold_no_text() -> None:
    keys = repeat_keys("my phone number is 555 0100 and I live at 12 Elm Street")
    for key in (keys.clean, keys.violation):
        assert "phone" not in key and "555" not in key and len(key) < 40


def test_a_short_skeleton_falls_back_to_the_exact_text() -> None:
    # "12:30", "2024" and "!!!" keep no letters: a flag for one must not pass to another.
    for a, b in [("12:30", "2024"), ("ok", "ok!!"), ("!!!", "???")]:
        assert len(violation_skeleton(a)) < MIN_SKELETON_SYMBOLS
        assert repeat_keys(a).violation == repeat_keys(a).clean
        assert repeat_keys(a).violation != repeat_keys(b).violation


@pytest.mark.parametrize(
    "alphabet",
    [
        "abcdefghjkmnopqrstuvwxyz",  # every basic Latin letter, l standing with i (below)
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "αβγδεζηθικλμνξοπρστυφχψω",
        "אבגדהוזחטיכלמנסעפצקרשת",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    ],
)
def test_the_letters_of_an_alphabet_stay_apart(alphabet: str) -> None:
    classes = {letter_class(unicodedata.normalize("NFKC", c)) for c in alphabet}
    merged = len(alphabet) - len(classes)
    # Each alphabet keeps its letters apart, but for look-alikes inside one script that
    # UTS #39 itself lists as confusable (in Hebrew ו and ן, in Arabic a few dotless forms).
    assert merged <= 3, [c for c in alphabet if sum(letter_class(x) == letter_class(c) for x in alphabet) > 1]


def test_i_and_l_share_a_class_because_capital_i_looks_like_l() -> None:
    assert letter_class("i") == letter_class("I") == letter_class("l") == letter_class("L")


def test_case_pairs_that_cannot_merge_are_few_and_named() -> None:
    refused = sorted(
        c
        for c in _unicode.characters("[[:Changes_When_Casefolded:]&[:L:]]")
        if len(c.casefold()) == 1 and letter_class(c) != letter_class(c.casefold())
    )
    assert refused == sorted("ſΓΝΥ\U000118a4\U000118bc")


@example("Ɪ")
@given(st.characters(categories=["Lu", "Ll", "Lt"]))
@settings(max_examples=300, deadline=None)
def test_a_letter_and_its_look_alikes_share_a_class(char: str) -> None:
    for other in lookalikes_of(char):
        assert letter_class(other) == letter_class(char)


def test_russian_case_changes_keep_the_key() -> None:
    assert repeat_keys("ПРИВЕТ ВСЕМ, ГОСТИ").violation == repeat_keys("привет всем, гости").violation


def test_zalgo_and_stray_marks_are_dropped_but_accented_letters_are_letters() -> None:
    assert violation_skeleton("i\u0338\u0322d\u0337i\u0335o\u0336t\u0338") == violation_skeleton("idiot")
    assert violation_skeleton("pécher") != violation_skeleton("pêcher")
