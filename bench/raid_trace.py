"""Raid trace: how many model calls a repeat memory keyed by bot.text would make (issue 7 §2).

    python bench/raid_trace.py [--seed N] [--runs 5] [--json OUT] [--write-trace OUT.jsonl]

The trace, generated reproducibly from a seed: 5,000 messages, shuffled together.
- 4,000 near-repeats of 20 spam texts, 200 each, as raids vary them to defeat exact
  matching: case changes, look-alike letters (any letter that ICU's UTS #39 data gives the
  same skeleton: Cyrillic, Greek, fullwidth, mathematical...), zero-width characters,
  digits and punctuation, each added at random.
- 1,000 distinct chat lines: everyday talk built from templates, lines in other scripts
  (Russian, Greek, Arabic, Japanese, emoji), and hostile but legitimate-looking lines from
  the hostile corpus (mentions, control tokens, injections, bidi, markup).

What is counted, per policy: a model call for every message the memory cannot answer.
The spam texts are taken to be judged violations and the chat lines clean (the figure
depends only on keys). Today's keying (`bot.sanitise.normalise_for_repeats`) reuses any
verdict for the same normalised text. The new keying (`bot.text.repeat_keys`) reuses any
verdict under the clean key (the exact normalised text), and a violation under the
violation key. The limit, from the issue: (1,000 + 20) calls per policy.

Also counted: chat lines that would borrow a spam text's violation (a false flag), and the
cost of computing the keys and the judged view per message, against today's normalisation
measured in the same run.

Speed goes in benchmarks, not timed tests: nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.helpers_hostile lives beside bot/
    sys.path.insert(0, str(REPO))

from bot.sanitise import normalise_for_repeats  # noqa: E402
from bot.text import _unicode, judged_view, repeat_keys  # noqa: E402
from tests.helpers_hostile import hostile_texts  # noqa: E402

SPAM = [
    "FREE Discord Nitro for everyone! Claim yours at discord-gift.example before it expires",
    "you are a worthless idiot and everyone in this server hates you",
    "I'll 🔪 you tonight, watch your back",
    "dm me for cheap followers and likes, fast delivery guaranteed",
    "send me your password or your account will be deleted today",
    "🔥🔥 hot singles in your area want to meet you 🔥🔥 click the link",
    "Congratulations, you won a free iPhone, claim your prize now",
    "Join my crypto pump group and double your money in one day",
    "Steam is giving away 50 dollar gift cards, log in here to get yours",
    "kill yourself nobody would miss you",
    "Earn 500 a day working from home, message me to learn how",
    "go back to where you came from, you are not welcome here",
    "Your account has been flagged, verify your identity at the link below",
    "selling cheap game accounts with rare skins, dm for prices",
    "everyone raid this server now, spam it until it dies",
    "I know where you live and I am coming for you",
    "click here for free robux, no verification needed",
    "look at this girl's leaked photos, link in my bio",
    "our admins are giving away free boosts, react to claim",
    "Привет всем! Бесплатные подарки на нашем канале, заходите сейчас",
]

# Everyday chat, built from templates: enough combinations that 1,000 lines never repeat.
_OPENERS = ["hey", "ok so", "lol", "honestly", "wait", "yo", "btw", "tbh", "hmm", "guys", "alright", "fun fact:"]
_SUBJECTS = [
    "the new patch", "my cat", "this song", "the raid last night", "the meeting", "your build", "the boss fight",
    "that movie", "the weather", "my code", "the server event", "the new map", "the tournament", "dinner",
    "the update notes", "my pull request", "the speedrun", "the art contest", "the book club pick", "the bus",
]  # fmt: skip
_PREDICATES = [
    "is actually pretty good", "broke again", "made my day", "took forever", "was hilarious", "needs a nerf",
    "is on sale", "looks amazing", "crashed twice", "is way too hard", "got delayed", "surprised me",
    "reminded me of you", "is finally out", "was a mess", "deserves more love",
]  # fmt: skip
_ENDINGS = ["", "!", "?", " :)", " haha", " ngl", " 😂", " 👍", " for real", "...", " lmao", " 🎉"]
_OTHER_SCRIPTS = [
    "Привет, как дела? Давно не виделись",
    "Кто-нибудь играл в новую карту?",
    "Καλημέρα σε όλους, τι κάνετε;",
    "مرحبا بالجميع، كيف حالكم اليوم؟",
    "今日はいい天気ですね、散歩に行きます",
    "Tシャツの新しいデザインを見てください",
    "안녕하세요, 오늘 회의는 몇 시예요?",
    "¿Alguien quiere jugar esta noche?",
    "Ça marche, on se voit demain à midi",
    "Schönes Wochenende euch allen!",
    "🎂🎉🥳 happy birthday!!",
    "नमस्ते, आप कैसे हैं?",
]


@dataclass(frozen=True)
class TraceMessage:
    kind: str  # "spam" or "chat"
    source: int  # which spam text, or the chat line's index
    text: str


def _lookalikes() -> dict[str, tuple[str, ...]]:
    """Letters with the same UTS #39 skeleton as each letter of the spam texts, from ICU."""
    wanted = {_unicode.skeleton(c) for text in SPAM for c in text if c.isalpha()}
    wanted |= {_unicode.skeleton(c.swapcase()) for text in SPAM for c in text if c.isalpha()}
    grouped: dict[str, list[str]] = {}
    for char in _unicode.characters("[:L:]"):
        key = _unicode.skeleton(char)
        if key in wanted:
            grouped.setdefault(key, []).append(char)
    return {key: tuple(chars) for key, chars in grouped.items()}


_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\ufe0f"]
_PUNCTUATION = [*".,!?-_*~'\"#:;/\\|", "…", "‼", "¡", "·"]


def raid_variant(text: str, rng: random.Random, lookalikes: dict[str, tuple[str, ...]]) -> str:
    """One near-repeat: each variant kind is used by about half the messages, at random."""
    chars = list(text)
    if rng.random() < 0.5:  # case changes
        chars = [c.swapcase() if rng.random() < 0.2 and len(c.swapcase()) == 1 else c for c in chars]
    if rng.random() < 0.5:  # look-alike letters
        for index, char in enumerate(chars):
            options = [o for o in lookalikes.get(_unicode.skeleton(char), ()) if o != char] if char.isalpha() else []
            if options and rng.random() < 0.25:
                chars[index] = rng.choice(options)
    insertions: list[str] = []
    if rng.random() < 0.5:
        insertions += [rng.choice(_INVISIBLE) for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        insertions += [rng.choice(string.digits) * rng.randint(1, 3) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        insertions += [rng.choice(_PUNCTUATION) for _ in range(rng.randint(1, 4))]
    for piece in insertions:
        chars.insert(rng.randint(0, len(chars)), piece)
    return "".join(chars)


def chat_lines(rng: random.Random, count: int) -> list[str]:
    """Distinct chat lines (distinct even once normalised): everyday, other scripts, hostile."""
    hostile = [c.value for c in hostile_texts() if 0 < len(c.value) <= 500 and c.value.strip()]
    lines: list[str] = []
    seen: set[str] = set()

    def add(line: str) -> None:
        key = repeat_keys(line).clean
        if key not in seen:
            seen.add(key)
            lines.append(line)

    for line in _OTHER_SCRIPTS + hostile:
        add(line)
    while len(lines) < count:
        add(
            f"{rng.choice(_OPENERS)} {rng.choice(_SUBJECTS)} {rng.choice(_PREDICATES)}{rng.choice(_ENDINGS)}"
            + (f" ({rng.randint(2, 99)} times)" if rng.random() < 0.2 else "")
        )
    return lines[:count]


def build_trace(seed: int, spam_per_text: int = 200, chat: int = 1_000) -> list[TraceMessage]:
    rng = random.Random(seed)
    lookalikes = _lookalikes()
    trace = [
        TraceMessage("spam", i, raid_variant(text, rng, lookalikes))
        for i, text in enumerate(SPAM)
        for _ in range(spam_per_text)
    ]
    trace += [TraceMessage("chat", i, line) for i, line in enumerate(chat_lines(rng, chat))]
    rng.shuffle(trace)
    return trace


def calls_today(trace: list[TraceMessage]) -> int:
    """Today's memory: any verdict reused for the same normalise_for_repeats text."""
    return len({normalise_for_repeats(m.text) for m in trace})


@dataclass
class NewKeying:
    calls: int = 0
    spam_calls: int = 0
    chat_calls: int = 0
    false_flags: int = 0  # chat lines that borrowed a spam text's violation
    spam_keys_per_text_max: int = 0


def calls_new(trace: list[TraceMessage]) -> NewKeying:
    """The new memory: any verdict under the clean key; a violation under the violation key."""
    by_clean: dict[str, str] = {}  # clean key -> "violation" | "clean"
    violations: dict[str, int] = {}  # violation key -> spam source
    keys_per_text: dict[int, set[str]] = {}
    result = NewKeying()
    for message in trace:
        keys = repeat_keys(message.text)
        if message.kind == "spam":
            keys_per_text.setdefault(message.source, set()).add(keys.violation)
        if keys.clean in by_clean:
            continue
        if keys.violation in violations:
            if message.kind == "chat":
                result.false_flags += 1
            continue
        result.calls += 1
        if message.kind == "spam":
            result.spam_calls += 1
            by_clean[keys.clean] = "violation"
            violations[keys.violation] = message.source
        else:
            result.chat_calls += 1
            by_clean[keys.clean] = "clean"
    result.spam_keys_per_text_max = max(len(keys) for keys in keys_per_text.values())
    return result


def cost_per_message(trace: list[TraceMessage], work: Callable[[str], object]) -> float:
    """Microseconds per message for `work`, the median of 3 passes over the trace."""
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        for message in trace:
            work(message.text)
        samples.append((time.perf_counter() - started) / len(trace) * 1e6)
    return statistics.median(samples)


def run(seed: int) -> dict[str, Any]:
    trace = build_trace(seed)
    assert sum(m.kind == "spam" for m in trace) == 4_000 and sum(m.kind == "chat" for m in trace) == 1_000
    limit = 1_000 + len(SPAM)
    today = calls_today(trace)
    new = calls_new(trace)
    return {
        "seed": seed,
        "messages": len(trace),
        "limit": limit,
        "calls_today": today,
        "calls_today_ratio": today / limit,
        "calls_new": new.calls,
        "calls_new_ratio": new.calls / limit,
        "spam_calls": new.spam_calls,
        "chat_calls": new.chat_calls,
        "false_flags": new.false_flags,
        "violation_keys_per_spam_text_max": new.spam_keys_per_text_max,
        "us_today_key": cost_per_message(trace, normalise_for_repeats),
        "us_new_keys": cost_per_message(trace, repeat_keys),
        "us_new_view": cost_per_message(trace, judged_view),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5, help="seeds seed, seed+1, ...")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-trace", type=Path, help="write the first seed's trace as JSON lines")
    args = parser.parse_args()
    if args.write_trace:
        with args.write_trace.open("w", encoding="utf-8") as out:
            for m in build_trace(args.seed):
                out.write(json.dumps({"kind": m.kind, "source": m.source, "text": m.text}, ensure_ascii=False) + "\n")
    repeat_keys("warm up the ICU tables")
    results = [run(args.seed + i) for i in range(args.runs)]
    print(f"python {platform.python_version()}, {platform.machine()}, seeds {args.seed}..{args.seed + args.runs - 1}")
    for name in (
        "calls_today",
        "calls_today_ratio",
        "calls_new",
        "calls_new_ratio",
        "spam_calls",
        "chat_calls",
        "false_flags",
        "violation_keys_per_spam_text_max",
        "us_today_key",
        "us_new_keys",
        "us_new_view",
    ):
        values = [r[name] for r in results]
        print(f"{name:34} min {min(values):9.3f}  median {statistics.median(values):9.3f}  max {max(values):9.3f}")
    cost = statistics.median(r["us_new_keys"] / r["us_today_key"] for r in results)
    print(f"new keys cost {cost:.1f}x today's normalisation per message (median of the runs' ratios)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
