"""Raid through the real pipeline: model calls, mod-channel posts and DMs (issue 7 §2, §3).

    python bench/raid.py [--seed N] [--runs 5] [--policies 2] [--latency 0.005] [--json OUT]

The trace is bench/raid_trace.py's (5,000 messages from a seed: 4,000 near-repeats of 20
spam texts, 1,000 distinct chat lines, shuffled). Every message is submitted to the real
ModerationPipeline over the real SqliteStore (a temporary file), with 4 workers, as a
gateway would hand them over. The model is a fake that answers after `--latency` seconds;
it knows the trace's truth, looked up by the normalised text it is shown (so it judges what
the prompt shows it, as a model does). The server's effect rules flag, DM moderators and
delete at high confidence; the sink is in memory and gives each flag post a reference, as
a platform does, so that repeats can be shown on it.

Two scenarios, each over `--runs` seeds:
- "every policy flags spam" (the issue's assumption): every policy calls each spam text a
  violation. Limit: (1,000 + 20) x policies model calls.
- "one policy flags spam": the first policy flags the spam, the others pass it. A pass is
  reused only for the exact normalised text, so the others are asked about each spelling
  the raid uses; the same limit shows what that costs.

Counted per run, each against a limit from the same run:
- model calls / ((chat lines + spam texts) x policies);
- flag posts in the mod channel / spam texts (one flag per raid text is the target) and the
  posts a flag per violation would have made (before: one per message);
- flag edits (repeats shown on the first post; at most one per flag per 10 s, plus the last);
- DMs to moderators / (5 + 1) (the server's budget per pause: five, then one saying DMs pause);
- deletes / spam messages (each message is still deleted; the ratio must be 1);
- false flags: chat lines flagged.

Nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # bench/ and tests/ live beside bot/
    sys.path.insert(0, str(REPO))

from bench.raid_trace import SPAM, TraceMessage, build_trace  # noqa: E402
from bot.classifier import ClassificationRequest, build_messages  # noqa: E402
from bot.domain import (  # noqa: E402
    Author,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    EffectRule,
    Message,
    ServerSettings,
    Verdict,
)
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.raids import MODERATOR_DMS_PER_WINDOW  # noqa: E402
from bot.store.ports import PolicyContent  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.text import judged_view  # noqa: E402

WORKERS = 4
RULES = (
    EffectRule(min_confidence=Confidence.HIGH, effects=(EffectKind.FLAG, EffectKind.DM_MODERATORS, EffectKind.DELETE)),
)


@dataclass
class TruthModel:
    """A fake model that knows which normalised texts are spam, and says so after `latency`."""

    spam_views: set[str]
    flagging: set[str]  # the policies that call spam a violation
    latency: float
    calls: Counter[str] = field(default_factory=Counter)

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.calls[request.policy.name] += 1
        user = build_messages(request)[1]["content"]
        text = json.loads(user[user.index("\n\n{") + 2 :])["content"]["text"]
        await asyncio.sleep(self.latency)
        spam = text in self.spam_views and request.policy.name in self.flagging
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=spam,
            rule_ids=("R1.a",) if spam else (),
            confidence=Confidence.HIGH,
            rationale="spam" if spam else "fine",
        )


@dataclass
class CountingSink:
    platform: str = "console"
    supported_effects: frozenset[EffectKind] = frozenset(EffectKind)
    done: Counter[EffectKind] = field(default_factory=Counter)

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.done[effect.kind] += 1
        reference = f"mod/{context.case.id}" if effect.kind is EffectKind.FLAG else None
        return EffectResult(outcome=EffectOutcome.DONE, detail="counted", reference=reference)


def policy_text(name: str) -> str:
    return f"# {name} (R)\n\n## VIOLATES (1)\n- R1.a: {name} content.\n\n## SAFE (0)\n- R0.a: Everything else.\n"


async def run_once(
    trace: list[TraceMessage], policies: int, every_policy_flags: bool, latency: float
) -> dict[str, Any]:
    names = [f"policy{i}" for i in range(policies)]
    spam_views = {judged_view(m.text).normalised for m in trace if m.kind == "spam"}
    model = TruthModel(spam_views, set(names) if every_policy_flags else {names[0]}, latency)
    sink = CountingSink()
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "raid.db")
        try:
            for name in names:
                await store.policies.add_version("console", "s1", PolicyContent(name=name, text=policy_text(name)), "b")
            await store.settings.put(
                ServerSettings(platform="console", server_id="s1", effect_rules=RULES), store.now()
            )
            pipeline = ModerationPipeline(store, model, {"console": sink}, workers=WORKERS)
            await pipeline.start()
            started = time.perf_counter()
            accepted = await asyncio.gather(
                *(
                    pipeline.submit(
                        Message(
                            platform="console",
                            server_id="s1",
                            channel_id=f"c{n % 7}",
                            message_id=f"m{n}",
                            author=Author(id=f"u{n}"),
                            text=m.text,
                        )
                    )
                    for n, m in enumerate(trace)
                )
            )
            assert all(accepted)
            await pipeline.drain()
            assert pipeline.judge.flag_updates is not None
            await pipeline.judge.flag_updates.idle()
            wall = time.perf_counter() - started
            await pipeline.stop()
            cases = [c async for c in store.cases.every()]
        finally:
            await store.close()
    kinds = {f"m{n}": m.kind for n, m in enumerate(trace)}
    violations = [c for c in cases if c.violation]
    spam_messages = sum(m.kind == "spam" for m in trace)
    chat_lines = len(trace) - spam_messages
    limit_calls = (chat_lines + len(SPAM)) * policies
    dm_limit = MODERATOR_DMS_PER_WINDOW + 1
    return {
        "messages": len(trace),
        "wall_s": wall,
        "model_calls": sum(model.calls.values()),
        "model_calls_limit": limit_calls,
        "model_calls_ratio": sum(model.calls.values()) / limit_calls,
        "flag_posts": sink.done[EffectKind.FLAG],
        "flag_posts_ratio": sink.done[EffectKind.FLAG] / len(SPAM),
        "flag_posts_before": len(violations),
        "flag_edits": sink.done[EffectKind.UPDATE_FLAG],
        "flag_edits_per_text": sink.done[EffectKind.UPDATE_FLAG] / len(SPAM),
        "dms": sink.done[EffectKind.DM_MODERATORS],
        "dms_ratio": sink.done[EffectKind.DM_MODERATORS] / dm_limit,
        "deletes_ratio": sink.done[EffectKind.DELETE] / spam_messages,
        "false_flags": sum(kinds[c.message.message_id] == "chat" for c in violations),
        "joined": sum(c.joined_case_id is not None for c in cases),
    }


FIGURES = (
    "model_calls",
    "model_calls_ratio",
    "flag_posts",
    "flag_posts_ratio",
    "flag_posts_before",
    "flag_edits",
    "flag_edits_per_text",
    "dms",
    "dms_ratio",
    "deletes_ratio",
    "false_flags",
    "joined",
    "wall_s",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5, help="seeds seed, seed+1, ...")
    parser.add_argument("--policies", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.005, help="the fake model's seconds per call")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {WORKERS} workers, {args.policies} policies,"
        f" model latency {args.latency * 1000:.0f} ms, seeds {args.seed}..{args.seed + args.runs - 1}"
    )
    results: dict[str, list[dict[str, Any]]] = {}
    for scenario, every in (("every policy flags spam", True), ("one policy flags spam", False)):
        rows = results[scenario] = []
        for seed in range(args.seed, args.seed + args.runs):
            rows.append(asyncio.run(run_once(build_trace(seed), args.policies, every, args.latency)))
        print(f"\n{scenario}: limit {rows[0]['model_calls_limit']} model calls")
        for name in FIGURES:
            values = [r[name] for r in rows]
            low, middle, high = min(values), statistics.median(values), max(values)
            print(f"  {name:22} min {low:10.3f}  median {middle:10.3f}  max {high:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
