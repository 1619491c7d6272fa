"""Slack ack latency: how long Slack waits for its 200 now that a message is stored before the ack.

    python bench/slack_ack.py [--events N] [--runs R]

The adapter runs with process_before_response=True: the 200 goes back only after
`pipeline.submit` has stored the message. This measures what that costs, over loopback,
with the real Bolt app in HTTP mode and the local Slack delivering signed events one after
another:

- durable: the real ModerationPipeline on SqliteStore (a temporary file), with a model
  that answers at once (every message clean), so workers write cases while intake writes
  the queue, as in production;
- baseline (the same run): the same Bolt app with an intake that stores nothing, i.e.
  signature check, Bolt's dispatch and the HTTP round trip alone.

Each figure is the ack time per event (min / median / max over the runs of each run's
median), as a ratio against Slack's 3-second deadline and against the baseline.
Nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes lives beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

from adapters.slack.app import MessageIntake, SlackAdapter  # noqa: E402
from adapters.slack.config import load_settings  # noqa: E402
from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import Message, ServerSettings, Verdict  # noqa: E402
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.store.ports import PolicyContent  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.fakes.slack_fake import BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack  # noqa: E402

SLACK_DEADLINE = 3.0


class CleanModel:
    async def classify(self, request: ClassificationRequest) -> Verdict:
        return Verdict(policy=request.policy.name, policy_version=request.policy.version, rationale="fine")


class NoIntake:
    async def submit(self, message: Message) -> bool:
        return True

    async def settings_for(self, message: Message) -> ServerSettings:
        return ServerSettings(platform=message.platform, server_id=message.server_id)


async def ack_times(fake: FakeSlack, intake: MessageIntake, events: int) -> list[float]:
    settings = load_settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        MODBOT_SLACK_API_URL=fake.api_url,
        MODBOT_SLACK_HOST="127.0.0.1",
        MODBOT_SLACK_PORT="0",
    )
    adapter = SlackAdapter(settings)
    await adapter.start(intake)
    url = f"http://127.0.0.1:{adapter.port}/slack/events"
    times = []
    try:
        await fake.deliver(url, fake.user_message("warm-up: auth.test is called once"))
        for i in range(events):
            body = fake.user_message(f"message number {i}", channel=f"C0BENCH{i % 7}")
            started = time.perf_counter()
            status, _ = await fake.deliver(url, body)
            times.append(time.perf_counter() - started)
            assert status == 200, status
    finally:
        await adapter.stop()
    return times


async def one_run(events: int) -> tuple[float, float]:
    fake = await FakeSlack().start()
    try:
        baseline = statistics.median(await ack_times(fake, NoIntake(), events))
        with tempfile.TemporaryDirectory() as tmp:
            store = await SqliteStore.open(Path(tmp) / "bench.db")
            await store.policies.add_version(
                "slack", TEAM_ID, PolicyContent(name="harassment", text="## VIOLATES\n- HB1.a: insults\n"), "bench"
            )
            pipeline = ModerationPipeline(store, CleanModel(), {}, workers=4)
            await pipeline.start()
            try:
                durable = statistics.median(await ack_times(fake, pipeline, events))
                await pipeline.drain()
            finally:
                await pipeline.stop()
                await store.close()
    finally:
        await fake.stop()
    return baseline, durable


def spread(values: list[float]) -> str:
    return f"{min(values) * 1000:.2f} / {statistics.median(values) * 1000:.2f} / {max(values) * 1000:.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [await one_run(args.events) for _ in range(args.runs)]
    baseline = [b for b, _ in runs]
    durable = [d for _, d in runs]
    print(f"{args.runs} runs of {args.events} events each; per run, the median ack time")
    print(f"baseline (no store):        {spread(baseline)}  (min / median / max)")
    print(f"durable (stored before ack): {spread(durable)}")
    ratios = [d / SLACK_DEADLINE for d in durable]
    print(f"durable / Slack's 3 s deadline: {min(ratios):.4f} / {statistics.median(ratios):.4f} / {max(ratios):.4f}")
    costs = [d / b for b, d in runs]
    print(f"durable / baseline (same run): {min(costs):.2f} / {statistics.median(costs):.2f} / {max(costs):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
