"""Long text judged whole: overlapping chunks within a token budget, up to a cap.

Abuse anywhere in a long message must be seen, at its start, middle or end. Clipping the
text (as the prompt did at 4,000 characters) lets 4,000 characters of filler hide what
follows. A plan covers the text with chunks that each fit the budget and overlap their
neighbours, so a phrase cut by a boundary is whole in one of them. Past the cap (Slack's
40,000 characters, the longest message any platform sends) the head and the tail are
judged and the plan says, in words, what was left out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

# The longest message a platform sends (Slack); Discord's is 4,000 with Nitro.
MAX_JUDGED_CHARS = 40_000
# About 3,000 characters of English per chunk by the bound below: a small share of any
# context window, leaving the policy and the reasoning their room.
CHUNK_TOKENS = 1_000
# About 30 words of English: longer than a threat, a slur with its target, or a link with
# its bait, so one cut by a boundary is whole in one chunk.
OVERLAP_TOKENS = 64
# When cutting at the cap, look this far for a space so a word is not split.
_BOUNDARY_SEARCH = 200

_PIECE = re.compile(r"\S+\s*|\s+")
_ASCII_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def token_upper_bound(text: str) -> int:
    """An estimate of the model's token count that hostile text cannot push far below the truth.

    `bot.policy_format.estimate_tokens` counts words, which suits policy prose, but counts a
    40,000-character run without spaces, or a paragraph of Chinese, as one token. Here:
    a short ASCII word costs 1 token and one more per 6 characters (English BPE merges whole
    words); a longer run of letters and digits (a hash, base64, a URL) one per 2 characters;
    every other letter, digit or mark one each (Cyrillic, Arabic, CJK, zalgo); an emoji or
    other symbol 2 (BPE splits them into bytes); punctuation 1; a run of spaces 1 per 8.
    English comes out at about 1.4 times the o200k count, CJK close to it.
    """
    total = 0
    index = 0
    length = len(text)
    while index < length:
        run = _ASCII_ALNUM_RUN.match(text, index)
        if run is not None:
            size = run.end() - index
            total += 1 + size // 6 if size <= 12 else math.ceil(size / 2)
            index = run.end()
            continue
        char = text[index]
        if char.isspace():
            end = index + 1
            while end < length and text[end].isspace():
                end += 1
            total += 0 if end - index == 1 else math.ceil((end - index) / 8)
            index = end
            continue
        category = unicodedata.category(char)
        total += 2 if category in ("So", "Sk", "Co", "Cn") else 1
        index += 1
    return total


@dataclass(frozen=True)
class TextChunk:
    """One chunk: `text[start:end]` of the planned text, and its token bound."""

    text: str
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class ChunkPlan:
    """How a text is judged: the chunks, in order, and the part past the cap left out."""

    chunks: tuple[TextChunk, ...]
    total_chars: int
    # (start, end) of the middle left out past the cap; None when the whole text is judged.
    omitted: tuple[int, int] | None
    chunk_tokens: int
    overlap_tokens: int

    @property
    def whole(self) -> bool:
        return self.omitted is None and len(self.chunks) <= 1

    @property
    def omitted_chars(self) -> int:
        return 0 if self.omitted is None else self.omitted[1] - self.omitted[0]

    @property
    def summary(self) -> str:
        """What was done, in words, for the case record."""
        parts = len(self.chunks)
        if self.omitted is None:
            if parts <= 1:
                return f"judged whole ({self.total_chars:,} characters)"
            return (
                f"judged whole in {parts} overlapping parts of up to {self.chunk_tokens:,} tokens "
                f"({self.total_chars:,} characters)"
            )
        head, tail = self.omitted[0], self.total_chars - self.omitted[1]
        return (
            f"{self.total_chars:,} characters, over the {MAX_JUDGED_CHARS:,}-character cap: the first "
            f"{head:,} and the last {tail:,} judged in {parts} overlapping parts; "
            f"{self.omitted_chars:,} characters in the middle not judged"
        )

    def label(self, index: int) -> str | None:
        """What the model is told about chunk `index`: its place, and any cut next to it."""
        if self.whole:
            return None
        chunk = self.chunks[index]
        words = [f"part {index + 1} of {len(self.chunks)} of a longer message"]
        if self.omitted is not None:
            if chunk.end == self.omitted[0]:
                words.append(f"{self.omitted_chars:,} characters not shown follow this part")
            if chunk.start == self.omitted[1]:
                words.append(f"{self.omitted_chars:,} characters not shown precede this part")
        return "; ".join(words)


def plan_chunks(
    text: str,
    *,
    chunk_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    max_chars: int = MAX_JUDGED_CHARS,
) -> ChunkPlan:
    """Cover `text` with chunks of at most `chunk_tokens` (by `token_upper_bound`), each
    starting at least `overlap_tokens` before its predecessor ends, when pieces allow.

    Chunks end after whitespace when they can; a run with no space is cut where it must be.
    Past `max_chars`, the first and last halves of the cap are planned and the middle left out.
    """
    if chunk_tokens < 2 or not 0 <= overlap_tokens < chunk_tokens // 2 or max_chars < 2:
        raise ValueError("need chunk_tokens >= 2, 0 <= overlap_tokens < chunk_tokens / 2 and max_chars >= 2")
    if text and len(text) <= max_chars:
        # Most messages fit one chunk: the bound of the whole text is the sum of its pieces'
        # bounds (pieces split only between whitespace runs), so this is the plan below, cheaper.
        tokens = token_upper_bound(text)
        if tokens <= chunk_tokens:
            return ChunkPlan((TextChunk(text, 0, len(text), tokens),), len(text), None, chunk_tokens, overlap_tokens)
    segments: list[tuple[int, int]]
    omitted = None
    if len(text) <= max_chars:
        segments = [(0, len(text))]
    else:
        head_end = _space_before(text, max_chars // 2)
        tail_start = _space_after(text, len(text) - (max_chars - head_end))
        segments = [(0, head_end), (tail_start, len(text))]
        omitted = (head_end, tail_start)
    chunks: list[TextChunk] = []
    for begin, end in segments:
        chunks.extend(_chunk_segment(text, begin, end, chunk_tokens, overlap_tokens))
    return ChunkPlan(tuple(chunks), len(text), omitted, chunk_tokens, overlap_tokens)


def _space_before(text: str, index: int) -> int:
    """An index at most `index`, just after whitespace if some is near, so a word stays whole."""
    found = max(text.rfind(" ", index - _BOUNDARY_SEARCH, index), text.rfind("\n", index - _BOUNDARY_SEARCH, index))
    return found + 1 if found > 0 else index


def _space_after(text: str, index: int) -> int:
    candidates = [
        i
        for i in (text.find(" ", index, index + _BOUNDARY_SEARCH), text.find("\n", index, index + _BOUNDARY_SEARCH))
        if i >= 0
    ]
    return min(candidates) + 1 if candidates else index


def _pieces(text: str, begin: int, end: int, chunk_tokens: int) -> list[tuple[int, int, int]]:
    """(start, end, tokens) of each word with its trailing space; an oversized run is split."""
    pieces: list[tuple[int, int, int]] = []
    for match in _PIECE.finditer(text, begin, end):
        stack = [(match.start(), match.end())]
        while stack:
            start, stop = stack.pop()
            tokens = token_upper_bound(text[start:stop])
            if tokens <= chunk_tokens // 2 or stop - start <= 1:
                pieces.append((start, stop, tokens))
            else:  # halves, so no piece holds more than half a chunk and chunks can overlap
                middle = (start + stop) // 2
                stack.append((middle, stop))
                stack.append((start, middle))
    return pieces


def _chunk_segment(text: str, begin: int, end: int, chunk_tokens: int, overlap_tokens: int) -> list[TextChunk]:
    pieces = _pieces(text, begin, end, chunk_tokens)
    if not pieces:
        return [TextChunk(text[begin:end], begin, end, 0)] if end > begin else []
    chunks: list[TextChunk] = []
    first = 0
    while True:
        last = first
        tokens = pieces[first][2]
        while last + 1 < len(pieces) and tokens + pieces[last + 1][2] <= chunk_tokens:
            last += 1
            tokens += pieces[last][2]
        start, stop = pieces[first][0], pieces[last][1]
        chunks.append(TextChunk(text[start:stop], start, stop, token_upper_bound(text[start:stop])))
        if last + 1 >= len(pieces):
            return chunks
        # Step back over whole pieces until the overlap is reached, always moving forward.
        following = last + 1
        carried = 0
        while following - 1 > first and carried + pieces[following - 1][2] <= overlap_tokens:
            following -= 1
            carried += pieces[following][2]
        if overlap_tokens and following == last + 1 and last > first:
            following = last  # at least one piece of overlap
        first = following
