"""`modbot run` with a Discord token: the launcher's Discord entry, and a real bot process end to end.

The subprocess test is the first-run walk-through of the README, done by a real `modbot run`
against the local Discord and a fake Ollama, both served from this test's event loop:
/policy set harassment (the form, filled with the library's template), /modbot setup (the
mod channel and the moderator role), a member's message, the flag, a moderator's Confirm.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters import launcher
from adapters.discord import platform as discord_platform
from bot.domain import EffectKind
from tests.discord.conftest import BotProcess
from tests.discord.helpers import acknowledged, answer_of, enabled_buttons, followups, owner
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import REPO


def test_discord_is_declared_with_every_effect_and_starts_only_with_a_token(tmp_path: Path) -> None:
    declared = {c.platform: c for c in launcher.declared_capabilities({})}
    assert declared["discord"].effects == frozenset(EffectKind) == declared["discord"].configured
    assert launcher.DISCORD in launcher.PLATFORMS
    assert launcher.platforms_to_start({}) == []
    assert launcher.platforms_to_start({"DISCORD_TOKEN": "t"}) == [launcher.DISCORD]
    token_file = tmp_path / "token"
    assert discord_platform.credentials_set({"DISCORD_TOKEN_FILE": str(token_file)})
    assert not discord_platform.credentials_set({"DISCORD_TOKEN": "  "})


def test_the_launcher_learns_discords_capabilities_without_importing_discord_py() -> None:
    import subprocess

    probe = (
        "import sys; from adapters import launcher; launcher.declared_capabilities({}); "
        "print('discord' in sys.modules, 'adapters.discord.client' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["False", "False"]


async def test_healthz_and_the_metric_see_whether_discord_is_connected(bot_process: BotProcess) -> None:
    from bot.observability.health import run_checks
    from bot.observability.metrics import ModbotMetrics
    from bot.observability.wiring import health_checks

    await bot_process.start()
    platform = bot_process.platform
    assert platform is not None
    metrics = ModbotMetrics()
    [discord_check] = [c for c in health_checks(bot_process.bot, metrics, {"discord": platform}) if "discord" in c.name]
    assert (await run_checks([discord_check])).ok
    assert metrics.registry.get_sample_value("modbot_adapter_connected", {"platform": "discord"}) == 1.0

    await bot_process.stop()
    [result] = (await run_checks([discord_check])).results
    assert result.problem == "not connected to the Discord gateway"
    assert metrics.registry.get_sample_value("modbot_adapter_connected", {"platform": "discord"}) == 0.0


@pytest.mark.slow
async def test_modbot_run_moderates_a_message_end_to_end(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    fake = fake_discord
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MODBOT_", "DISCORD_", "SLACK_"))},
        **fake.env(),
        "MODBOT_DB": str(tmp_path / "modbot.db"),
        "OLLAMA_HOST": fake_ollama.host,
        "MODBOT_LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        "run",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Connected, and the commands registered: the bot answers everything from now on.
        await fake.rec.wait_for("PUT", f"/applications/{fake.app_id}/commands", timeout=60)
        admin = owner(fake)

        command = await fake.command("policy set", name="harassment", user=admin)
        form = await acknowledged(fake, command)
        [field] = [c for row in form["data"]["components"] for c in row["components"]]
        submit = await fake.submit_modal(
            "modbot:policy-set:harassment", {"policy_text": field["value"]}, user=admin, channel=fake.general
        )
        assert "**harassment** v1 saved" in (await answer_of(fake, submit))["content"]

        setup = await fake.command("modbot setup", user=admin)
        [page] = await followups(fake, setup)
        stored = next(
            m for m in fake.messages.values() if m.get("components") and m["components"] == page["components"]
        )
        for custom_id, values in (
            ("modbot:setup:mod_channel", [fake.mod_log.id]),
            ("modbot:setup:moderator_roles", [fake.mod_role.id]),
        ):
            picked = await fake.select(stored, custom_id, values, user=admin)
            await acknowledged(fake, picked)
            await fake.rec.wait_for("PATCH", f"/webhooks/{fake.app_id}/{picked['token']}/messages/@original")

        message = await fake.post_message(fake.general, fake.alice, "you idiot")

        def flag() -> dict[str, Any] | None:
            return next((m for m in fake.messages_in(fake.mod_log) if m.get("embeds")), None)

        post = await fake.wait_for_state(flag, timeout=30)
        assert post["embeds"][0]["title"] == "Flagged: harassment v1"
        assert message["content"] in post["embeds"][0]["description"]
        case_id = post["embeds"][0]["footer"]["text"].removeprefix("case ")
        confirmed = await answer_of(fake, await fake.click(post, f"modbot:confirm:{case_id}", user=fake.mo))
        assert confirmed["content"].splitlines()[0] == f"Case {case_id} confirmed."
        assert enabled_buttons(fake.messages[post["id"]]) == [f"modbot:reasoning:{case_id}"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    log = err.decode()
    assert process.returncode == 0, log[-3000:]
    assert "modbot running: discord" in log
    assert fake.TOKEN not in log and fake.TOKEN not in out.decode()
