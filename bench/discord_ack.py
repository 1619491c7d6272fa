"""Discord acknowledgement latency: how long a click or a command waits for modbot's first answer.

    python bench/discord_ack.py [--interactions N] [--runs R] [--backlog M]

Discord gives a bot 3 seconds to answer an interaction (defer, a form, or a reply);
modbot acknowledges before it asks the core anything. This measures, over loopback with
the real discord.py and the local Discord (tests/fakes/discord_fake.py), the time from
the gateway's INTERACTION_CREATE to the bot's callback, for a Confirm click on a flag
post and for `/policy list`, in one bot process assembled as `modbot run` does (the
launcher's Discord entry, the app, a SQLite file):

- idle: nothing else to do;
- busy (the same run): a backlog of M messages being judged meanwhile, by a model that
  takes 20 ms a call on 2 workers, each violation flagged in the mod channel: the event
  loop, the store and Discord's REST are shared with the interactions.

Each figure is the median acknowledgement time of a run (min / median / max over the
runs), as a ratio against Discord's 3-second limit, and busy against idle.
Nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes lives beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

import discord.gateway  # noqa: E402
import discord.http  # noqa: E402

from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import EffectKind, EffectRule, Verdict  # noqa: E402
from tests.discord.conftest import BotProcess  # noqa: E402
from tests.discord.helpers import flag_post_of  # noqa: E402
from tests.fakes.discord_fake import FakeDiscord  # noqa: E402
from tests.helpers import ScriptedClassifier  # noqa: E402

DISCORD_LIMIT = 3.0


class SlowModel(ScriptedClassifier):
    """Flags "idiot", like the tests' model, but takes `seconds` a call."""

    seconds: float = 0.02

    async def classify(self, request: ClassificationRequest) -> Verdict:
        await asyncio.sleep(self.seconds)
        return await super().classify(request)


async def ack_seconds(fake: FakeDiscord, interaction: Any) -> float:
    started = time.perf_counter()
    sent = await interaction
    await fake.rec.wait_for("POST", f"/interactions/{sent['id']}/{sent['token']}/callback", timeout=30)
    return time.perf_counter() - started


async def one_run(interactions: int, backlog: int) -> tuple[float, float]:
    """(idle, busy) median acknowledgement seconds of one bot process."""
    fake = await FakeDiscord().start()
    os.environ.update(fake.env())
    defaults = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    with tempfile.TemporaryDirectory() as tmp:
        process = BotProcess(fake, Path(tmp) / "bench.db", classifier=SlowModel())
        await process.seed(effect_rules=(EffectRule(effects=(EffectKind.FLAG,)),))
        await process.start()
        try:
            message = await fake.post_message(fake.general, fake.alice, "you idiot")
            case = await process.decided.wait_for(message["id"])
            post = flag_post_of(fake, case.id)

            async def measure() -> list[float]:
                times = []
                for i in range(interactions):
                    if i % 2:
                        times.append(await ack_seconds(fake, fake.command("policy list", user=fake.mo)))
                    else:
                        click = fake.click(post, f"modbot:reasoning:{case.id}", user=fake.mo)
                        times.append(await ack_seconds(fake, click))
                return times

            idle = await measure()
            posted = [await fake.post_message(fake.general, fake.bob, f"you idiot {i}") for i in range(backlog)]
            busy = await measure()
            pending = process.bot.pipeline.backlog
            await process.decided.wait_for(posted[-1]["id"], timeout=600)
        finally:
            await process.stop()
            await fake.stop()
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = defaults
    print(
        f"  run: idle {statistics.median(idle) * 1000:.1f} ms, busy {statistics.median(busy) * 1000:.1f} ms "
        f"(max {max(busy) * 1000:.1f} ms; {pending} messages still queued when the last click was answered)"
    )
    return statistics.median(idle), statistics.median(busy)


def milliseconds(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.1f}" for v in (min(values), statistics.median(values), max(values)))


def spread(values: list[float]) -> str:
    return " / ".join(f"{v:.4f}" for v in (min(values), statistics.median(values), max(values)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=300)
    args = parser.parse_args()
    import discord as discord_library

    print(f"discord.py {discord_library.__version__}, Python {sys.version.split()[0]}")
    results = [await one_run(args.interactions, args.backlog) for _ in range(args.runs)]
    idle = [i for i, _ in results]
    busy = [b for _, b in results]
    print(f"idle ack (ms), min / median / max: {milliseconds(idle)}")
    print(f"busy ack (ms), min / median / max: {milliseconds(busy)}")
    print(f"idle ÷ Discord's 3 s limit: {spread([v / DISCORD_LIMIT for v in idle])}")
    print(f"busy ÷ Discord's 3 s limit: {spread([v / DISCORD_LIMIT for v in busy])}")
    print(f"busy ÷ idle (same run):     {spread([b / i for i, b in results])}")


if __name__ == "__main__":
    asyncio.run(main())
