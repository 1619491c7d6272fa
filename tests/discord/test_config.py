"""The adapter's settings: the token's two sources, endpoints applied in one place, sharding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from pydantic import ValidationError

from adapters.discord import capabilities
from adapters.discord.client import DiscordAdapter, ShardedModbotClient
from adapters.discord.config import DiscordConfigError, DiscordSettings, apply_endpoints
from bot.domain import EffectKind
from bot.store.ports import PolicyContent
from tests.discord.conftest import DiscordWorld
from tests.fakes.discord_fake import FakeDiscord


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DISCORD_TOKEN",
        "DISCORD_TOKEN_FILE",
        "MODBOT_DISCORD_API_BASE",
        "MODBOT_DISCORD_GATEWAY_URL",
        "MODBOT_DISCORD_SHARDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_token_comes_from_the_environment_or_a_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DISCORD_TOKEN", "  abc.def  ")
    assert DiscordSettings().bot_token() == "abc.def"
    clean_env.delenv("DISCORD_TOKEN")
    secret = tmp_path / "token"
    secret.write_text("Bot from-a-file\n", encoding="utf-8")  # a pasted header value works too
    clean_env.setenv("DISCORD_TOKEN_FILE", str(secret))
    settings = DiscordSettings()
    assert settings.configured and settings.bot_token() == "from-a-file"
    assert "from-a-file" not in repr(settings) or settings.token is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "no Discord token: set DISCORD_TOKEN, or DISCORD_TOKEN_FILE"),
        ({"DISCORD_TOKEN": "   "}, "DISCORD_TOKEN is empty"),
        ({"DISCORD_TOKEN_FILE": "/nonexistent/token"}, "DISCORD_TOKEN_FILE=/nonexistent/token: cannot read it"),
    ],
)
def test_a_missing_token_says_what_to_set(clean_env: pytest.MonkeyPatch, env: dict[str, str], problem: str) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(DiscordConfigError, match=problem.replace("(", r"\(")):
        DiscordSettings().bot_token()


def test_the_token_is_never_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DISCORD_TOKEN", "very-secret")
    settings = DiscordSettings()
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DISCORD_TOKEN": "a", "DISCORD_TOKEN_FILE": "/run/secrets/t"}, "not both"),
        ({"MODBOT_DISCORD_SHARDS": "lots"}, 'must be "auto" or a whole number'),
        ({"MODBOT_DISCORD_SHARDS": "0"}, 'must be "auto" or a whole number'),
        ({"MODBOT_DISCORD_API_BASE": "127.0.0.1:9/api/v10"}, "must be an http"),
        ({"MODBOT_DISCORD_GATEWAY_URL": "http://127.0.0.1:9/gateway"}, "must be a ws"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_fix(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        DiscordSettings()


@pytest.mark.parametrize(("value", "sharded", "count"), [(None, False, None), ("auto", True, None), ("4", True, 4)])
def test_sharding_setting(clean_env: pytest.MonkeyPatch, value: str | None, sharded: bool, count: int | None) -> None:
    if value is not None:
        clean_env.setenv("MODBOT_DISCORD_SHARDS", value)
    settings = DiscordSettings()
    assert (settings.sharded, settings.shard_count) == (sharded, count)


def test_endpoints_are_applied_by_one_function(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    clean_env.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    apply_endpoints(DiscordSettings())  # nothing set: Discord's own endpoints stay
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    clean_env.setenv("MODBOT_DISCORD_API_BASE", "http://127.0.0.1:9/api/v10/")
    clean_env.setenv("MODBOT_DISCORD_GATEWAY_URL", "ws://127.0.0.1:9/gateway")
    apply_endpoints(DiscordSettings())
    assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
    assert yarl.URL("ws://127.0.0.1:9/gateway") == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


def test_capabilities_are_declared_without_importing_discord() -> None:
    assert capabilities.supported_effects() == frozenset(EffectKind)
    assert capabilities.configured({"DISCORD_TOKEN": "x"}) and capabilities.configured({"DISCORD_TOKEN_FILE": "/f"})
    assert not capabilities.configured({"DISCORD_TOKEN": " "})


async def test_a_wrong_token_fails_at_start_with_discords_answer(
    fake_discord: FakeDiscord, discord_env: Callable[[], DiscordSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "wrong")
    adapter = DiscordAdapter(discord_env(), guild_ready_timeout=0.05)

    class NoIntake:
        async def submit(self, message: object) -> bool:
            raise AssertionError("nothing is taken in before login")

    with pytest.raises(discord.LoginFailure):
        await adapter.start(NoIntake())  # type: ignore[arg-type]
    await adapter.close()


async def test_a_fixed_shard_count_identifies_each_shard_without_asking_for_a_recommendation(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = world.fake
    monkeypatch.setenv("MODBOT_DISCORD_SHARDS", "1")
    world.settings = DiscordSettings()
    adapter = await world.start_bot()
    assert isinstance(adapter.client, ShardedModbotClient)
    [session] = fake.sessions.values()
    assert session.shard == (0, 1)
    assert fake.rec.find("GET", "/gateway/bot") == []
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    await world.decided.wait_for(message["id"])


@pytest.mark.slow
async def test_auto_sharding_follows_discords_recommendation_across_guilds(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = world.fake
    fake.recommended_shards = 2
    second = fake.add_guild("Second Guild", owner=fake.bob)
    channel = fake.add_channel(second, "chat")
    fake.add_member(second, fake.bot_user)
    fake.add_member(second, fake.alice)
    content = PolicyContent(name="harassment", text="## VIOLATES (1)\n- HB1.a: Insults.\n")
    await world.store.policies.add_version("discord", second.id, content, "t")
    monkeypatch.setenv("MODBOT_DISCORD_SHARDS", "auto")
    world.settings = DiscordSettings()
    # discord.py waits 5 s between two shards' IDENTIFYs (Discord's identify rate limit).
    adapter = await world.start_bot()
    assert len(fake.rec.find("GET", "/gateway/bot")) == 1
    assert sorted(s.shard for s in fake.sessions.values()) == [(0, 2), (1, 2)]  # type: ignore[type-var]
    assert {g.id for g in adapter.client.guilds} == {int(fake.guild.id), int(second.id)}
    assert fake.session_for(fake.guild.id) is not fake.session_for(second.id)
    one = await fake.post_message(fake.general, fake.alice, "you idiot")
    two = await fake.post_message(channel, fake.alice, "you idiot")
    cases = await asyncio.gather(world.decided.wait_for(one["id"]), world.decided.wait_for(two["id"]))
    assert [c.message.server_id for c in cases] == [fake.guild.id, second.id]


def test_the_invite_asks_for_exactly_the_permissions_the_effects_need() -> None:
    needed = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        read_message_history=True,
        manage_messages=True,
        moderate_members=True,
    )
    assert needed.value == capabilities.REQUIRED_PERMISSIONS
    assert capabilities.invite_url("123") == (
        "https://discord.com/oauth2/authorize?client_id=123&scope=bot+applications.commands&permissions=1374389627904"
    )
    # The local Discord's modbot role is set up with exactly these, so the tests run with them.
    assert FakeDiscord().bot_role.permissions == needed.value
