"""What the model judges: a normalised view of a message, and the original when they differ.

A raid or a single evader hides words from exact matching and from the model's tokenizer:
`i\\u200bd\\u200bi\\u200bo\\u200bt`, `ｉｄｉｏｔ`, `іdіot` with Cyrillic letters. The view undoes
those disguises, so the model reads the word as a person sees it, and keeps the original
(with the hidden characters made visible) beside it, because the disguise itself is a
signal and because normalising can lose meaning (a Persian zero-width non-joiner).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from bot.sanitise import neutralise_control_tokens, valid_text
from bot.text import _unicode

# Control characters that are not whitespace (C0, DEL, C1): invisible, and ESC sequences
# rewrite a terminal. Whitespace controls (tab, newlines) are collapsed instead.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]+")
# U+2800 BRAILLE PATTERN BLANK renders as a space in every font but is not whitespace to
# Unicode: it is how "empty" messages and invisible padding are made.
_BLANK = "\u2800"
# A run of two or more, or one that is not a plain space: single spaces, most of any text,
# are left alone without a call per match.
_WHITESPACE_RUN = re.compile(rf"[\s{_BLANK}]{{2,}}|(?! )[\s{_BLANK}]")
_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class Normalisation(StrEnum):
    """A step of normalisation that changed the text; the model is told which ones did."""

    COMPATIBILITY = "compatibility"
    INVISIBLE = "invisible"
    BIDI = "bidi"
    LOOKALIKE = "lookalike"
    WHITESPACE = "whitespace"


_DESCRIPTIONS = {
    Normalisation.INVISIBLE: "invisible characters removed",
    Normalisation.BIDI: "text-direction controls removed",
    Normalisation.COMPATIBILITY: "stylised letters or digits (fullwidth, bold, circled) written plainly",
    Normalisation.LOOKALIKE: "look-alike letters from another script inside a word replaced",
    Normalisation.WHITESPACE: "spacing collapsed",
}

# These change how a text looks to a person but not what it says: the original adds
# nothing the model needs, and it would double the prompt.
_COSMETIC = frozenset({Normalisation.WHITESPACE})


@dataclass(frozen=True)
class JudgedView:
    """`normalised` is what the model judges (and what a clean verdict is keyed on).

    `original` is the text as written, with each run of invisible characters shown as a
    marker such as `⟨3 invisible⟩`, when normalising changed more than spacing; else None.
    Both have model control tokens neutralised: normalising can create them (NFKC turns
    `＜｜start｜＞` into `<|start|>`), so this is done last, here.
    """

    normalised: str
    original: str | None
    changes: frozenset[Normalisation]

    @property
    def notes(self) -> str:
        """The changes in words, for the prompt and the case: empty when nothing changed."""
        return "; ".join(_DESCRIPTIONS[c] for c in Normalisation if c in self.changes)


def judged_view(text: str) -> JudgedView:
    """The normalised view of a message text: see the module's docstring and README."""
    text = valid_text(text)
    changes: set[Normalisation] = set()

    visible = _without_invisibles(text, changes)
    compatible = unicodedata.normalize("NFKC", visible)
    if compatible != visible:
        if _compatibility_changed_letters(visible):
            changes.add(Normalisation.COMPATIBILITY)
        # NFKC maps a few characters onto invisible ones (U+FFA0 onto U+3164).
        compatible = _unicode.DEFAULT_IGNORABLE.sub("", compatible)
    folded = fold_lookalikes(compatible)
    if folded != compatible:
        changes.add(Normalisation.LOOKALIKE)
    normalised = collapse_whitespace(folded)
    if normalised != folded:
        changes.add(Normalisation.WHITESPACE)

    original = None
    if changes - _COSMETIC:
        original = neutralise_control_tokens(collapse_whitespace(show_invisibles(text)))
    return JudgedView(neutralise_control_tokens(normalised), original, frozenset(changes))


def _without_invisibles(text: str, changes: set[Normalisation]) -> str:
    if _unicode.BIDI_CONTROL.search(text):
        changes.add(Normalisation.BIDI)
    visible = _CONTROL.sub("", _unicode.DEFAULT_IGNORABLE.sub("", text))
    if len(visible) + _count_bidi(text) < len(text):
        changes.add(Normalisation.INVISIBLE)
    return visible


def _count_bidi(text: str) -> int:
    return len(_unicode.BIDI_CONTROL.findall(text))


def _compatibility_changed_letters(text: str) -> bool:
    """Whether NFKC rewrote a letter or digit: fullwidth `ｉｄｉｏｔ`, math bold, circled letters.

    NFKC also rewrites punctuation that Chinese and Japanese write fullwidth every day (`，`,
    `！`) and `…`; those alone do not make the original worth showing.
    """
    for char in text:
        if unicodedata.is_normalized("NFKC", char):
            continue
        if any(c.isalnum() for c in unicodedata.normalize("NFKC", char)):
            return True
    return False


def collapse_whitespace(text: str) -> str:
    """Each run of whitespace becomes one line break if it held one, else one space."""

    def _one(match: re.Match[str]) -> str:
        return "\n" if _LINE_BREAK.search(match.group(0)) else " "

    return _WHITESPACE_RUN.sub(_one, text).strip()


def show_invisibles(text: str) -> str:
    """The text as written, with each run of invisible or control characters shown as a marker.

    The marker gives the count, not the code points: tag characters can spell hidden ASCII
    instructions to a language model ("ASCII smuggling"), and must not reach it readable.
    """

    def _marker(match: re.Match[str]) -> str:
        run = match.group(0)
        kind = "direction control" if all(_unicode.BIDI_CONTROL.match(c) for c in run) else "invisible"
        return f"⟨{len(run)} {kind}⟩"

    hidden = re.compile(f"(?:{_unicode.DEFAULT_IGNORABLE.pattern}|{_CONTROL.pattern})+")
    return hidden.sub(_marker, text)


# ---------------------------------------------------------------- look-alikes


def fold_lookalikes(text: str) -> str:
    """Replace look-alike letters in words that mix scripts, per UTS #39; leave the rest as written.

    A word written in one script (Russian in Cyrillic, Greek, Arabic) stays as it is, and so
    does Latin mixed with the scripts CJK languages write together. In a word that mixes
    scripts otherwise, each letter from outside the word's script is replaced by a letter
    of that script with the same UTS #39 skeleton, when one exists.
    """
    if text.isascii():
        return text
    out: list[str] = []
    start = 0
    for match in _words(text):
        out.append(text[start : match[0]])
        word = text[match[0] : match[1]]
        if word.isascii():
            out.append(word)
        elif len(word) <= _CACHED_WORD_CHARS:
            out.append(_fold_if_mixed(word))
        else:
            out.append(_fold_word(word) if _unicode.mixes_scripts(word) else word)
        start = match[1]
    out.append(text[start:])
    return "".join(out)


def _words(text: str) -> list[tuple[int, int]]:
    """Spans of letters, marks and digits: a word as a reader sees it, whatever its scripts."""
    spans: list[tuple[int, int]] = []
    begin = -1
    for index, char in enumerate(text):
        if unicodedata.category(char)[0] in "LMN":
            if begin < 0:
                begin = index
        elif begin >= 0:
            spans.append((begin, index))
            begin = -1
    if begin >= 0:
        spans.append((begin, len(text)))
    return spans


# A raid repeats its words, so folded words are remembered; only short ones, so hostile
# 40,000-character words cannot fill memory.
_CACHED_WORD_CHARS = 64


@functools.lru_cache(maxsize=16384)
def _fold_if_mixed(word: str) -> str:
    return _fold_word(word) if _unicode.mixes_scripts(word) else word


def _fold_word(word: str) -> str:
    """Fold the word towards the script that explains it with the fewest replacements.

    Candidates are the scripts of its own letters. The best leaves the fewest letters of
    another script unfolded, then changes the case of the fewest (a capital standing for a
    small letter reads wrong: `раураl` is "paypal", not Cyrillic with a capital `І`), then
    makes the fewest replacements (so a Russian word with one Latin `o` stays Russian),
    then prefers Latin, the script most look-alikes imitate.
    """
    scripts = sorted({s for s in map(_unicode.script_of, word) if s not in (_unicode.COMMON, _unicode.INHERITED)})
    best: tuple[tuple[int, int, int, bool, int], str] | None = None
    for target in scripts:
        out: list[str] = []
        unfolded = recased = replaced = 0
        for char in word:
            if _belongs(char, target):
                out.append(char)
                continue
            lookalike = lookalike_in(char, target)
            if lookalike is None:
                unfolded += 1
                out.append(char)
            else:
                replaced += 1
                recased += lookalike.isupper() != char.isupper()
                out.append(lookalike)
        score = (unfolded, recased, replaced, target != _unicode.LATIN, target)
        if best is None or score < best[0]:
            best = (score, "".join(out))
    return word if best is None else unicodedata.normalize("NFC", best[1])


def _belongs(char: str, target: int) -> bool:
    script = _unicode.script_of(char)
    return script in (_unicode.COMMON, _unicode.INHERITED, target) or target in _unicode.script_extensions(char)


@functools.lru_cache(maxsize=16384)
def lookalike_in(char: str, script: int) -> str | None:
    """A letter of `script` confusable with `char` (same UTS #39 skeleton), or None.

    A lowercase letter with no look-alike of its own is read by its capital: Cyrillic `н`
    has the skeleton of a small capital `ʜ`, and its capital `Н` that of `H`, so it reads `h`.
    """
    by_skeleton = _unicode.letters_by_skeleton(script)
    # (candidate, read through its capital?)
    candidates = [(c, False) for c in by_skeleton.get(_unicode.skeleton(char), ())]
    upper = char.upper()
    if upper != char and len(upper) == 1:
        for capital in by_skeleton.get(_unicode.skeleton(upper), ()):
            lower = capital.lower()
            if len(lower) == 1 and _unicode.script_of(lower) == script:
                candidates.append((lower, True))
    if not candidates:
        return None
    # Same case as the letter replaced, then plain ASCII (`h` before the small capital
    # `ʜ`), then a direct look-alike before one read through the capital, then letters in
    # modern use.
    best = min(
        candidates,
        key=lambda c: (
            c[0].isupper() != char.isupper(),
            not c[0].isascii(),
            c[1],
            not _unicode.is_recommended(c[0]),
            c,
        ),
    )
    return best[0]
