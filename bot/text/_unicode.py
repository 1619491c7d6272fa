"""The Unicode data the text package needs, taken from ICU: UTS #39 and character properties.

ICU is the kept implementation of UTS #39 (confusable skeletons, mixed-script detection
with the CJK augmentations) and of the Unicode properties used here. Nothing in this
package keeps its own table of look-alikes or of invisible characters.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import icu

# The skeleton of UTS #39 section 4: two strings are confusable when their skeletons are
# equal. ICU's type argument is ignored since ICU 58 (one table for every case).
_SKELETONS: Any = icu.SpoofChecker()

# UTS #39 section 5.2: "highly restrictive" allows one script per word, or Latin with the
# scripts CJK languages write together (Han, Hiragana, Katakana, Bopomofo, Hangul). A word
# that fails it mixes scripts the way a homoglyph evasion does ("раураl", "іdiot").
_SCRIPT_MIX: Any = icu.SpoofChecker()
_SCRIPT_MIX.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL)
_SCRIPT_MIX.setRestrictionLevel(icu.URestrictionLevel.HIGHLY_RESTRICTIVE)
_RESTRICTION_FAILED = int(icu.USpoofChecks.RESTRICTION_LEVEL)

COMMON = int(icu.UScriptCode.COMMON)
INHERITED = int(icu.UScriptCode.INHERITED)
LATIN = int(icu.UScriptCode.LATIN)
CYRILLIC = int(icu.UScriptCode.CYRILLIC)


def _ranges_class(pattern: str) -> str:
    """A regular-expression character class holding the ICU set `pattern`."""
    parts = []
    for first, last in icu.UnicodeSet(pattern).ranges():
        parts.append(re.escape(first) if first == last else f"{re.escape(first)}-{re.escape(last)}")
    return "[" + "".join(parts) + "]"


# Default_Ignorable_Code_Point: every character that renders as nothing when a font lacks
# it. Exactly the zero-width characters, joiners, word joiner, BOM, soft hyphen, bidi marks,
# embeddings, overrides and isolates, the Mongolian vowel separator and free variation
# selectors, Hangul fillers, variation selectors and tag characters, and the reserved
# ranges set aside for more of them.
DEFAULT_IGNORABLE = re.compile(_ranges_class("[:Default_Ignorable_Code_Point:]") + "+")
# The bidi controls among them (UAX #9 explicit formatting), told apart only to say so.
BIDI_CONTROL = re.compile(_ranges_class("[:Bidi_Control:]"))
# What a violation key keeps besides letters: pictographs (emoji and the symbols they grew
# from) and the regional indicators that spell flags. Only symbols: `‼` and `⁉` are
# pictographic too, but punctuation, which raids vary.
_PICTOGRAPHIC = re.compile(_ranges_class("[[[:Extended_Pictographic:][:Regional_Indicator:]]&[:So:]]"))


def is_pictographic(char: str) -> bool:
    return _PICTOGRAPHIC.match(char) is not None


def skeleton(text: str) -> str:
    """UTS #39 skeleton: look-alike characters map to one prototype (the result is NFD)."""
    return str(_SKELETONS.getSkeleton(0, text))


def mixes_scripts(word: str) -> bool:
    """True when the word is not "highly restrictive" in the sense of UTS #39 section 5.2."""
    return bool(int(_SCRIPT_MIX.check(word)) & _RESTRICTION_FAILED)


@functools.lru_cache(maxsize=8192)
def script_of(char: str) -> int:
    return int(icu.Script.getScript(char).getScriptCode())


@functools.lru_cache(maxsize=8192)
def script_extensions(char: str) -> frozenset[int]:
    """The scripts a character is used with (Script_Extensions), e.g. U+30FC in Hiragana and Katakana."""
    return frozenset(int(code) for code in icu.Script.getScriptExtensions(char))


@functools.cache
def _recommended() -> Any:
    return _SKELETONS.getRecommendedUnicodeSet()


def is_recommended(char: str) -> bool:
    """In the UTS #39 identifier profile: characters in modern use."""
    return bool(_recommended().contains(char))


def characters(pattern: str) -> Iterator[str]:
    """Every code point of an ICU set pattern, in code-point order."""
    for first, last in icu.UnicodeSet(pattern).ranges():
        for code in range(ord(first), ord(last) + 1):
            yield chr(code)


@functools.lru_cache(maxsize=64)
def letters_by_skeleton(script: int) -> dict[str, tuple[str, ...]]:
    """The NFKC-stable letters of one script, grouped by skeleton: the inverse of the skeleton map."""
    short = icu.Script(script).getShortName()
    grouped: dict[str, list[str]] = {}
    for char in characters(f"[[:sc={short}:]&[:L:]]"):
        if unicodedata.normalize("NFKC", char) == char:
            grouped.setdefault(skeleton(char), []).append(char)
    return {key: tuple(chars) for key, chars in grouped.items()}
