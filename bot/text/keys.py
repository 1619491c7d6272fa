"""Repeat keys: when a verdict already given may stand for another message.

Two keys, because the two mistakes cost differently:

- A **clean** verdict is reused only under the clean key: exactly the normalised text the
  model judged. A spelling the model never saw can never borrow another spelling's pass.
- A **violation** is reused under the violation key: a skeleton of the text that drops
  what a raid varies to defeat exact matching (digits, punctuation, case, invisible
  characters, look-alike letters, stray combining marks) and keeps every letter and emoji.
  A wrong reuse of a violation is a false flag that moderators review; "I'm 12, dm me" and
  "I'm 21, dm me" may share a flag, never a pass.

Keys are digests, so a memory of many long messages stays small and holds no text.
"""

from __future__ import annotations

import functools
import hashlib
import string
import unicodedata
from dataclasses import dataclass

from bot.sanitise import valid_text
from bot.text import _unicode
from bot.text.view import JudgedView, judged_view

# A skeleton of fewer letters and emoji than this says too little to call two messages the
# same ("ok", "lol", "12:30", "!!!"): such a message falls back to its exact normalised text.
MIN_SKELETON_SYMBOLS = 4
# Joins the skeleton's symbols: a symbol may be several characters (UTS #39 reads `m` as
# `rn`), and `m` must stay apart from a typed `r` `n`. Control characters never survive into
# a skeleton, so the separator cannot be forged.
_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class RepeatKeys:
    """`clean`: the key under which any verdict on this exact normalised text is reused.
    `violation`: the key under which only a violation is reused for near-repeats."""

    clean: str
    violation: str


def repeat_keys(text: str, view: JudgedView | None = None) -> RepeatKeys:
    """Both keys of a message text; pass the view if it was already computed."""
    view = judged_view(text) if view is None else view
    clean = clean_key(view)
    symbols = violation_skeleton(text)
    if len(symbols) < MIN_SKELETON_SYMBOLS:
        return RepeatKeys(clean, clean)
    return RepeatKeys(clean, "s:" + _digest(_SEPARATOR.join(symbols)))


def clean_key(view: JudgedView) -> str:
    """Exactly the normalised text the model judged (as a digest)."""
    return "n:" + _digest(view.normalised)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def violation_skeleton(text: str) -> tuple[str, ...]:
    """The letters and emoji of a text, each as its look-alike and case class; nothing else.

    Readable for tests and debugging; the key is its digest.
    """
    # NFC only: composing `e` + U+0301 into `é` must not depend on how it was typed. The
    # compatibility forms are read per character below, by how they look.
    text = unicodedata.normalize("NFC", _unicode.DEFAULT_IGNORABLE.sub("", valid_text(text)))
    symbols: list[str] = []
    for char in text:
        symbols.extend(_symbols_of(char))
    return tuple(symbols)


@functools.lru_cache(maxsize=65536)
def _symbols_of(char: str) -> tuple[str, ...]:
    """What one character contributes to a violation skeleton.

    A letter counts by its look (its UTS #39 skeleton), so `ſ` is an `f` and `ͺ` an `i`
    even where NFKC reads them otherwise; a character NFKC spells as several letters or
    that is not itself a letter counts by those letters (`ﬁ` is `f` `i`, `ⓘ` is `i`);
    an emoji counts as itself.
    Digits, punctuation, symbols, spaces, controls and the combining marks left after
    composition (zalgo, strike-through) are what raids vary: they count for nothing.
    """
    letters = [c for c in unicodedata.normalize("NFKC", char) if unicodedata.category(c)[0] == "L"]
    if unicodedata.category(char)[0] == "L" and len(letters) <= 1:
        # ICU's confusables leave some compatibility letters as they are (fullwidth `ｄ` `ｆ`
        # `ｑ` `ｒ` `ｕ` `ｗ`): with no look of their own on record, they count by their NFKC letter.
        if letters and letters[0] != char and _unicode.skeleton(char) == char:
            return (letter_class(letters[0]),)
        return (letter_class(char),)  # ℹ is a letter first, an emoji second
    if letters:
        return tuple(letter_class(c) for c in letters)
    return (char,) if _unicode.is_pictographic(char) else ()


@functools.lru_cache(maxsize=65536)
def letter_class(char: str) -> str:
    """One name for a letter, its other case and its look-alikes: the class's UTS #39 skeleton."""
    node = _unicode.skeleton(char)
    return _letter_classes().get(node, node)


@functools.cache
def _letter_classes() -> dict[str, str]:
    """Skeletons merged across case: skeleton -> the skeleton naming its class.

    UTS #39 skeletons are case-sensitive (`H` and Cyrillic `Н` share one, `h` and `н` do
    not), and a raid changes case. So the skeletons of a letter's two cases are merged,
    with one limit: a merge that would make two different basic Latin letters one is
    refused. Without it, chains of foreign case pairs would merge `n` with `v` (Greek `Ν`
    looks like `N`, its small `ν` like `v`) and `r`, `t`, `u`, `y` and `z` together. The
    basic Latin case pairs go first, and make `i` and `l` one class, because UTS #39 says a
    capital `I` is an `l`; that merge is the one a case-blind look-alike key cannot avoid.
    What is refused is listed by `tests/text/test_keys.py`: a handful of Greek, Coptic,
    Cherokee and Warang Citi case pairs (and `ſ`, which NFKC folds first anyway).
    """
    parent: dict[str, str] = {}
    anchored: dict[str, str] = {}  # class root -> the basic Latin letter it holds

    def find(node: str) -> str:
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def union(a: str, b: str, *, forced: bool) -> None:
        root_a, root_b = find(a), find(b)
        if root_a == root_b:
            return
        anchor_a, anchor_b = anchored.get(root_a), anchored.get(root_b)
        if anchor_a and anchor_b and not forced:
            return
        # The root with the basic Latin letter stays the root, so keys read as Latin.
        if anchor_b and not anchor_a:
            root_a, root_b = root_b, root_a
            anchor_a, anchor_b = anchor_b, anchor_a
        parent[root_b] = root_a
        anchored.pop(root_b, None)
        if anchor_a or anchor_b:
            anchored[root_a] = anchor_a or anchor_b or ""

    for lower in string.ascii_lowercase:
        node = _unicode.skeleton(lower)
        anchored.setdefault(find(node), lower)
        union(node, _unicode.skeleton(lower.upper()), forced=True)
    # Where two case pairs compete for one class, the first wins. Cyrillic goes first: it is
    # the cased script most written after Latin, and the one evaders borrow from most
    # (Cyrillic `Г`/`г` competes with Greek `Γ`/`γ`, whose `γ` reads as `y`).
    cased = sorted(
        (c for c in _unicode.characters("[[:Changes_When_Casefolded:]&[:L:]]") if not c.isascii()),
        key=lambda c: (_unicode.script_of(c) != _unicode.CYRILLIC, ord(c)),
    )
    for char in cased:
        folded = char.casefold()
        if len(folded) == 1:
            union(_unicode.skeleton(char), _unicode.skeleton(folded), forced=False)
    return {node: find(node) for node in list(parent)}
