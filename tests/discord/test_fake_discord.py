"""The local Discord itself, lightly: its rules for pings, limits, intents and sessions match Discord's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio

from tests.discord.conftest import DiscordWorld
from tests.fakes.discord_fake import FakeDiscord, FakeGuild, FakeRole, limit_problems, pings_of

GUILD = FakeGuild("1", "g", "9", roles={"1": FakeRole("1", "@everyone"), "5": FakeRole("5", "mods", mentionable=True)})
GUILD.roles["6"] = FakeRole("6", "hidden", mentionable=False)
CONTENT = "@everyone <@&5> <@&6> <@7> <@!8> hi"


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (None, {"everyone", "role:5", "7", "8"}),  # Discord's default: every mention in the content
        ({"parse": []}, set()),
        ({"parse": [], "roles": ["5"]}, {"role:5"}),
        ({"parse": [], "roles": [6]}, set()),  # a role that is not mentionable never pings
        ({"parse": ["users"]}, {"7", "8"}),
    ],
)
def test_pings_follow_allowed_mentions(allowed: dict[str, Any] | None, expected: set[str]) -> None:
    assert pings_of(CONTENT, allowed, GUILD) == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"content": "x" * 2001}, "content: 2001 > 2000"),
        ({"embeds": [{"description": "x" * 4097}]}, "embeds[0].description: 4097 > 4096"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "embeds[0].fields: 26 > 25"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, "embeds[0].fields[0].value: 1025 > 1024"),
        ({"embeds": [{"description": "x" * 4000}, {"description": "y" * 2001}]}, "embeds: 6001 characters in all"),
        ({"embeds": [{"fields": [{"name": "n", "value": ""}]}]}, "empty name or value"),
    ],
)
def test_bodies_over_discords_limits_are_refused(body: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in limit_problems(body)), limit_problems(body)
    assert limit_problems({"content": "x" * 2000, "embeds": [{"description": "y" * 4096}]}) == []


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    f = await FakeDiscord().start()
    yield f
    await f.stop()


async def next_dispatch(ws: aiohttp.ClientWebSocketResponse, event: str) -> dict[str, Any]:
    while True:
        frame = json.loads((await ws.receive()).data)
        if frame.get("t") == event:
            return frame  # type: ignore[no-any-return]


async def test_a_session_without_the_message_content_intent_gets_empty_content(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.ws_url + "?v=10&encoding=json") as ws:
        assert json.loads((await ws.receive()).data)["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": fake.TOKEN, "intents": 1 | 512, "properties": {}}})
        ready = await next_dispatch(ws, "READY")
        assert ready["d"]["guilds"] == [{"id": fake.guild.id, "unavailable": True}]
        await fake.post_message(fake.general, fake.alice, "secret words")
        frame = await next_dispatch(ws, "MESSAGE_CREATE")
        assert frame["d"]["content"] == "" and frame["d"]["author"]["id"] == fake.alice.id


async def test_resuming_an_unknown_session_is_refused(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.ws_url + "?v=10&encoding=json") as ws:
        await ws.receive()
        await ws.send_json({"op": 6, "d": {"token": fake.TOKEN, "session_id": "nope", "seq": 3}})
        assert json.loads((await ws.receive()).data) == {"op": 9, "d": False}


async def test_unknown_routes_are_recorded_and_answered_like_discord(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.get(fake.api_base + "/guilds/1/bans") as response:
        assert response.status == 404 and response.headers["Content-Type"] == "application/json"
        assert await response.json() == {"message": "404: Not Found", "code": 0}
    assert fake.unhandled == ["GET /api/v10/guilds/1/bans"]


async def test_command_sync_and_a_deferred_slash_command_answered_through_original(running: DiscordWorld) -> None:
    """The routes phase B's slash commands need, with the real discord.py."""
    fake, tree = running.fake, running.bot.tree

    @tree.command(name="ping", description="Is modbot there?")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content="pong")

    synced = await tree.sync()
    put = await fake.rec.wait_for("PUT", f"/applications/{fake.app_id}/commands")
    assert [c["name"] for c in put.json] == ["ping"] and [c.name for c in synced] == ["ping"]
    slash = await fake.slash("ping", user=fake.alice, channel=fake.general)
    callback = await fake.rec.wait_for("POST", f"/interactions/{slash['id']}/{slash['token']}/callback")
    assert callback.query == {"with_response": "1"} and callback.json == {"type": 5, "data": {"flags": 64}}
    await fake.rec.wait_for("PATCH", f"/webhooks/{fake.app_id}/{slash['token']}/messages/@original")
    answer = fake.messages[fake.interactions[slash["token"]]["original_message_id"]]
    assert answer["content"] == "pong" and answer["flags"] & 64
