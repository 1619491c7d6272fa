"""Slack commands: how long Slack waits for the acknowledgement, and how long until the person reads the answer.

    python bench/slack_commands.py [--commands N] [--runs R]

The real Bolt app in HTTP mode over the whole app on SQLite (bootstrap, as `modbot run`
builds it), and the local Slack delivering signed `/policy list` commands from a
moderator, one after another. Two times per command:

- ack: from sending the command to Slack's 200 (what the 3-second deadline is about);
- answer: from sending the command to the ephemeral answer arriving at its response_url
  (the lazy listener: rights from users.info, cached after the first, the store, the reply).

Each figure is the median over a run's commands; min / median / max over the runs, and
the ack as a ratio of Slack's deadline. Nothing here asserts speed; it reports.
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

from adapters.launcher import declared_capabilities  # noqa: E402
from adapters.slack.app import SlackAdapter  # noqa: E402
from adapters.slack.config import load_settings  # noqa: E402
from bot.bootstrap import bootstrap  # noqa: E402
from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import ServerSettings, Verdict, utcnow  # noqa: E402
from bot.policy_format import parse_policy  # noqa: E402
from bot.policy_library import content_of  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.fakes.slack_fake import BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack  # noqa: E402

SLACK_DEADLINE = 3.0
MODERATOR = "U0MOD"


class CleanModel:
    async def classify(self, request: ClassificationRequest) -> Verdict:
        return Verdict(policy=request.policy.name, policy_version=request.policy.version, rationale="fine")


async def one_run(commands: int) -> tuple[float, float]:
    fake = await FakeSlack().start()
    fake.add_user(MODERATOR, "mod")
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "MODBOT_SLACK_API_URL": fake.api_url,
        "MODBOT_SLACK_HOST": "127.0.0.1",
        "MODBOT_SLACK_PORT": "0",
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = await SqliteStore.open(db)
        policy = (REPO / "policies" / "harassment.md").read_text(encoding="utf-8")
        await store.policies.add_version("slack", TEAM_ID, content_of(parse_policy(policy)), "bench")
        settings = ServerSettings(platform="slack", server_id=TEAM_ID, moderator_user_ids=(MODERATOR,))
        await store.settings.put(settings, utcnow())
        app = await bootstrap(
            ModbotSettings(db=db, workers=2),
            capabilities=declared_capabilities(env),
            classifier=CleanModel(),
            store=store,
            run_jobs=False,
        )
        adapter = SlackAdapter(load_settings(**env))
        app.platforms.add("slack", adapter.sink)
        await app.start()
        await adapter.start(app.pipeline, app)
        url = f"http://127.0.0.1:{adapter.port}/slack/events"
        acks, answers = [], []
        try:
            await fake.deliver(url, fake.user_message("warm-up: Bolt's auth.test is called once"))
            for _ in range(commands):
                fields = fake.slash_command("/policy", "list", user=MODERATOR)
                hook = fields["response_url"].rsplit("/", 1)[1]
                started = time.perf_counter()
                status, _ = await fake.deliver_command(url, fields)
                acks.append(time.perf_counter() - started)
                await fake.wait_for_response(hook)
                answers.append(time.perf_counter() - started)
                assert status == 200, status
        finally:
            await adapter.stop()
            await app.aclose()
            await fake.stop()
    return statistics.median(acks), statistics.median(answers)


def spread(values: list[float]) -> str:
    return f"{min(values) * 1000:.2f} / {statistics.median(values) * 1000:.2f} / {max(values) * 1000:.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [await one_run(args.commands) for _ in range(args.runs)]
    acks = [a for a, _ in runs]
    answers = [b for _, b in runs]
    print(f"{args.runs} runs of {args.commands} `/policy list` commands each; per run, the median")
    print(f"ack (Slack's 200):            {spread(acks)}  (min / median / max)")
    print(f"answer at the response_url:   {spread(answers)}")
    ratios = [a / SLACK_DEADLINE for a in acks]
    print(f"ack / Slack's 3 s deadline: {min(ratios):.4f} / {statistics.median(ratios):.4f} / {max(ratios):.4f}")


if __name__ == "__main__":
    asyncio.run(main())
