"""prepare_for_judging: the parts one message becomes, with keys and the case record."""

from __future__ import annotations

from bot.text import prepare_for_judging


def test_a_disguised_message_is_one_part_with_its_original_and_notes() -> None:
    judged = prepare_for_judging("you i\u200bd\u0456ot")
    assert len(judged.parts) == 1
    part = judged.parts[0]
    assert part.text == "you idiot"
    assert part.original == "you i⟨1 invisible⟩dіot"
    assert part.label is None
    assert judged.record == (
        "judged whole (9 characters); invisible characters removed; "
        "look-alike letters from another script inside a word replaced"
    )


def test_a_plain_message_is_one_part_without_original() -> None:
    judged = prepare_for_judging("hello there")
    assert [(p.text, p.original, p.label) for p in judged.parts] == [("hello there", None, None)]
    assert judged.record == "judged whole (11 characters)"


def test_an_empty_message_has_nothing_to_judge() -> None:
    assert prepare_for_judging("\u200b \u2800").parts == ()


def test_a_long_message_is_labelled_parts_without_the_original() -> None:
    judged = prepare_for_judging(("spam\u200b " * 2_000) + "the end")
    assert len(judged.parts) > 1
    assert all(p.original is None for p in judged.parts)
    assert judged.parts[0].label == f"part 1 of {len(judged.parts)} of a longer message"
    assert judged.parts[-1].text.endswith("the end")
    assert judged.record.startswith(f"judged whole in {len(judged.parts)} overlapping parts")
    assert "invisible characters removed" in judged.record


def test_the_record_holds_no_message_content() -> None:
    judged = prepare_for_judging("my secret address is 12 Elm Street \u200b")
    assert "Elm" not in judged.record and "secret" not in judged.record


def test_keys_come_with_the_parts() -> None:
    a, b = prepare_for_judging("FREE nitro now!!"), prepare_for_judging("free n1itro n\u200bow")
    assert a.keys.violation == b.keys.violation
    assert a.keys.clean != b.keys.clean
