"""Slack as the launcher runs it: its declaration, when it starts, the settings it refuses, and `modbot run` itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters import launcher
from adapters.slack import platform
from adapters.slack.config import DELETE_NEEDS_ADMIN_TOKEN, NO_TIMEOUTS, SlackConfigError
from bot.domain import EffectKind, ServerSettings, utcnow
from bot.policy_format import parse_policy
from bot.policy_library import content_of
from bot.settings import ModbotSettings
from bot.store.sqlite import SqliteStore
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.slack_fake import ADMIN_TOKEN, ADMIN_USER_ID, APP_TOKEN, BOT_TOKEN, TEAM_ID, FakeSlack
from tests.helpers import REPO, run_modbot
from tests.slack.conftest import MOD_CHANNEL, POLICY_TEXT
from tests.slack.test_http_events import texts_in

SOCKET_ENV = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}


def test_slack_is_registered_with_the_launcher() -> None:
    assert launcher.PlatformEntry("slack", "adapters.slack.platform") in launcher.PLATFORMS
    assert "slack" in {c.platform for c in launcher.declared_capabilities({})}


def test_slack_never_times_out_and_deletes_only_with_an_admin_token() -> None:
    without = platform.capabilities({**SOCKET_ENV})
    assert {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT, EffectKind.DELETE}.isdisjoint(without.effects)
    assert without.limits[EffectKind.DELETE] == DELETE_NEEDS_ADMIN_TOKEN
    assert without.limits[EffectKind.TIMEOUT] == NO_TIMEOUTS
    for admin in ({"SLACK_ADMIN_USER_TOKEN": ADMIN_TOKEN}, {"SLACK_ADMIN_USER_TOKEN_FILE": "/run/secrets/admin"}):
        declared = platform.capabilities({**SOCKET_ENV, **admin})
        assert EffectKind.DELETE in declared.effects and EffectKind.TIMEOUT not in declared.effects
        assert declared.configured == declared.effects


def test_declaring_slack_loads_no_slack_library() -> None:
    code = (
        "import sys, adapters.launcher as l; l.declared_capabilities({'SLACK_BOT_TOKEN': 'xoxb-1'});"
        "print(sorted(m for m in sys.modules if m.startswith(('slack_bolt', 'slack_sdk'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bad_token_in_the_environment_does_not_break_admin_commands() -> None:
    # The declaration reads which variables are set, not their values: `modbot run` checks them.
    declared = platform.capabilities({"SLACK_BOT_TOKEN": "not-a-token", "SLACK_ADMIN_USER_TOKEN": "xoxb-wrong"})
    assert EffectKind.DELETE in declared.effects


@pytest.mark.parametrize(
    ("environ", "starts"),
    [
        ({}, False),
        (SOCKET_ENV, True),
        ({"SLACK_BOT_TOKEN_FILE": "/run/secrets/bot", "SLACK_APP_TOKEN_FILE": "/run/secrets/app"}, True),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s"}, True),
        ({"SLACK_APP_TOKEN": APP_TOKEN}, False),
    ],
)
def test_slack_starts_with_a_bot_token_and_a_way_to_connect(environ: dict[str, str], starts: bool) -> None:
    assert platform.credentials_set(environ) is starts


def test_a_bot_token_alone_is_not_started_and_the_log_says_what_is_missing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modbot.run"):
        assert platform.credentials_set({"SLACK_BOT_TOKEN": BOT_TOKEN}) is False
    [record] = caplog.records
    assert "SLACK_APP_TOKEN" in record.getMessage() and "SLACK_SIGNING_SECRET" in record.getMessage()
    assert BOT_TOKEN not in record.getMessage()


async def test_connect_stops_the_start_when_slack_refuses_the_token(fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_APP_TOKEN": APP_TOKEN, "MODBOT_SLACK_API_URL": fake_slack.api_url}
    with pytest.raises(SlackConfigError, match="Slack refused SLACK_BOT_TOKEN \\(invalid_auth\\)"):
        await platform.connect(ModbotSettings(db=tmp_path / "x.db"), env)


async def test_the_running_platform_says_whether_it_is_connected(fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = {**SOCKET_ENV, "MODBOT_SLACK_API_URL": fake_slack.api_url}
    running = await platform.connect(ModbotSettings(db=tmp_path / "x.db"), env)
    assert running.connected is False and await running.health() == "the Slack adapter is not started"
    assert running.adapter.connected is False

    class Intake:
        async def submit(self, message: object) -> bool:
            return True

        async def settings_for(self, message: object) -> ServerSettings:
            return ServerSettings(platform="slack", server_id=TEAM_ID)

    await running.slack.start(Intake())
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 5)
        assert running.connected is True and await running.health() is None and running.adapter.connected
    finally:
        await running.slack.stop()
    assert running.connected is False


# ---------------------------------------------------------------- settings refused, through the real CLI


async def _seed(db: Path) -> None:
    store = await SqliteStore.open(db)
    try:
        await store.policies.add_version("slack", TEAM_ID, content_of(parse_policy(POLICY_TEXT)), "seed")
        await store.settings.put(
            ServerSettings(platform="slack", server_id=TEAM_ID, mod_channel_id=MOD_CHANNEL), utcnow()
        )
    finally:
        await store.close()


def _without_slack() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODBOT_SLACK_"))}


@pytest.mark.slow
async def test_a_delete_rule_is_refused_in_settings_without_the_admin_token(tmp_path: Path) -> None:
    db = tmp_path / "settings.db"
    await _seed(db)
    rule = 'effect_rules=[{"effects": ["flag", "delete"]}]'
    args = ("settings", "set", "-s", TEAM_ID, "--platform", "slack", "-a", ADMIN_USER_ID, "--admin", rule)
    env = {**_without_slack(), "MODBOT_DB": str(db), **SOCKET_ENV}
    code, out, err = await run_modbot(*args, env=env)
    assert code == 2, out
    assert "slack cannot carry out delete" in err and "SLACK_ADMIN_USER_TOKEN" in err
    code, out, err = await run_modbot(*args, env={**env, "SLACK_ADMIN_USER_TOKEN": ADMIN_TOKEN})
    assert code == 0, err
    assert json.loads(out)["effect_rules"][0]["effects"] == ["flag", "delete"]
    code, _, err = await run_modbot(*args[:-1], 'effect_rules=[{"effects": ["timeout"]}]', env=env)
    assert code == 2 and "Slack has no timeouts" in err


# ---------------------------------------------------------------- `modbot run`, end to end over Socket Mode


@contextlib.asynccontextmanager
async def modbot_run(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
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
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 30)


@pytest.mark.slow
async def test_modbot_run_moderates_a_slack_message_over_socket_mode(
    tmp_path: Path, fake_slack: FakeSlack, fake_ollama: FakeOllama
) -> None:
    db = tmp_path / "run.db"
    await _seed(db)
    env = {
        **_without_slack(),
        **SOCKET_ENV,
        "MODBOT_SLACK_API_URL": fake_slack.api_url,
        "MODBOT_DB": str(db),
        "OLLAMA_HOST": fake_ollama.host,
        "MODBOT_LOG_LEVEL": "INFO",
    }
    async with modbot_run(env) as proc:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 60)
        event = fake_slack.user_message("you are an idiot", user="U0AUTHOR")
        ack = await fake_slack.send_envelope("events_api", event, timeout=30)
        assert set(ack) == {"envelope_id"}
        flag = await fake_slack.wait_for_call(
            "chat.postMessage", where=lambda c: c.args.get("channel") == MOD_CHANNEL, timeout=60
        )
        shown = "\n".join(texts_in(flag.json_arg("blocks")))
        assert "you are an idiot" in shown and "HB1.a" in shown and "Insulting a target" in shown
        # The same connection serves commands: the workspace admin lists the policies.
        command = fake_slack.slash_command("/policy", "list", user=ADMIN_USER_ID)
        await fake_slack.send_envelope("slash_commands", command, timeout=30)
        reply = await fake_slack.wait_for_response(command["response_url"].rsplit("/", 1)[1], timeout=60)
        assert "harassment* v1" in "\n".join(texts_in(reply["blocks"]))
        assert proc.returncode is None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    store = await SqliteStore.open(db)
    try:
        cases = [c async for c in store.cases.every()]
    finally:
        await store.close()
    [case] = cases
    assert case.message.platform == "slack" and case.message.server_id == TEAM_ID
    assert case.status.value == "open"
