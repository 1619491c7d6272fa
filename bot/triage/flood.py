"""Duplicate floods: one author posting near-identical text in many channels within seconds.

In memory, bounded and expiring: each author's recent posts are kept for the rule's
window only, at most `max_posts_per_author` of them, for at most `max_authors` authors
(the least recently seen go first). Time is the platform's time of each message, not the
clock: a backlog judged minutes late, or replayed after a restart, still sees the gaps
between posts as they were written.

Near-identical means that the texts share most of their character trigrams (Jaccard),
estimated from a bottom-k sketch of each text: a spammer's random suffix, changed
digits or case do not hide a copy, and memory per post is bounded whatever its length.
"""

from __future__ import annotations

import heapq
import re
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass

from bot.domain import Message
from bot.sanitise import normalise_for_repeats
from bot.triage.config import DuplicateFloodRule

SKETCH_SIZE = 64
# Only the start of a long text is compared: copies are copies from their first words.
COMPARED_CHARS = 1000
_DIGITS = re.compile(r"\d+")


def text_sketch(text: str) -> frozenset[int]:
    """The SKETCH_SIZE smallest hashes of the text's character trigrams (all of them for a short text).

    The text is folded (case, width, invisible characters, spacing) and digits are dropped,
    so that "win 500 free" and "WIN 900 free" sketch alike.
    """
    folded = _DIGITS.sub("", normalise_for_repeats(text))[:COMPARED_CHARS]
    grams = {folded[i : i + 3] for i in range(max(1, len(folded) - 2))}
    # crc32, not hash(): the same sketch in every process, so tests and thresholds are stable.
    hashes = {zlib.crc32(g.encode("utf-8", "surrogatepass")) for g in grams}
    return frozenset(heapq.nsmallest(SKETCH_SIZE, hashes))


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """Estimated Jaccard similarity of two texts from their bottom-k sketches."""
    if not a or not b:
        return 0.0
    union = heapq.nsmallest(SKETCH_SIZE, a | b)
    both = a & b
    return sum(1 for h in union if h in both) / len(union)


@dataclass(frozen=True)
class Post:
    at: float  # POSIX seconds of the platform's time
    channel_id: str
    message_id: str
    sketch: frozenset[int]


@dataclass(frozen=True)
class FloodHit:
    """The current message completes a flood: its near-copies, other channels first."""

    channels: int
    copies: tuple[Post, ...]  # earlier near-identical posts within the window, oldest first

    @property
    def message_refs(self) -> tuple[str, ...]:
        return tuple(f"{p.channel_id}/{p.message_id}" for p in self.copies)


class DuplicateFloodDetector:
    """One history of recent posts per (platform, server, author)."""

    def __init__(self, *, max_authors: int = 5000, max_posts_per_author: int = 16) -> None:
        self.max_authors = max_authors
        self.max_posts_per_author = max_posts_per_author
        self._posts: OrderedDict[tuple[str, str, str], deque[Post]] = OrderedDict()
        self._latest = float("-inf")
        # The longest window any server's rule has asked for: servers share this memory, and
        # one server's short window must not forget another's posts early.
        self._retention = 0.0

    def __len__(self) -> int:
        """Authors tracked now (for tests and the status page)."""
        return len(self._posts)

    def observe(self, message: Message, rule: DuplicateFloodRule) -> FloodHit | None:
        """Record the post and say whether it completes a flood under the rule."""
        if message.edited or len(message.text.strip()) < rule.min_chars:
            # An edit is not another post; a short text is everybody's ("gm").
            return None
        at = message.sent_at.timestamp()
        self._latest = max(self._latest, at)
        self._retention = max(self._retention, rule.window_seconds)
        self._forget_before(self._latest - self._retention)
        key = (message.platform, message.server_id, message.author.id)
        posts = self._posts.get(key)
        if posts is None:
            posts = self._posts[key] = deque(maxlen=self.max_posts_per_author)
            if len(self._posts) > self.max_authors:
                self._posts.popitem(last=False)
        else:
            self._posts.move_to_end(key)
        if any(p.message_id == message.message_id and p.channel_id == message.channel_id for p in posts):
            return None  # a gateway's replay of a post already counted
        post = Post(at, message.channel_id, message.message_id, text_sketch(message.text))
        copies = [
            p
            for p in posts
            if abs(p.at - at) <= rule.window_seconds and similarity(p.sketch, post.sketch) >= rule.similarity
        ]
        posts.append(post)
        channels = len({p.channel_id for p in copies} | {post.channel_id})
        if channels < rule.min_channels:
            return None
        return FloodHit(channels, tuple(sorted(copies, key=lambda p: p.at)))

    def _forget_before(self, horizon: float) -> None:
        # Authors are kept in order of their last post, oldest first: stop at the first
        # author with a recent post. Posts older than the horizon go from each author seen.
        while self._posts:
            key, posts = next(iter(self._posts.items()))
            while posts and posts[0].at < horizon:
                posts.popleft()
            if posts:
                break
            del self._posts[key]
