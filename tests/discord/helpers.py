"""Reading the local Discord's side of an interaction: its acknowledgement and its private answers."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord_fake import EPHEMERAL, FakeDiscord, FakeUser, request_body


def owner(fake: FakeDiscord) -> FakeUser:
    return fake.guild.members[fake.guild.owner_id].user


async def acknowledged(fake: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    callback = await fake.rec.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    return callback.json  # type: ignore[no-any-return]


async def followups(fake: FakeDiscord, interaction: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    """The interaction's follow-up messages (the answers after an acknowledgement), once `count` arrived."""
    path = f"/webhooks/{fake.app_id}/{interaction['token']}"
    await fake.rec.wait_for("POST", path, count=count, timeout=10)
    return [request_body(r) for r in fake.rec.find("POST", path)]


async def answer_of(fake: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    """The one private answer to a command: deferred ephemerally, then followed up."""
    callback = await acknowledged(fake, interaction)
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL  # "thinking", only they see it
    [reply] = await followups(fake, interaction)
    assert reply["flags"] & EPHEMERAL and reply["allowed_mentions"] == {"parse": []}
    return reply


def text_of(reply: dict[str, Any]) -> str:
    embeds = reply.get("embeds") or []
    parts = [reply.get("content") or ""]
    for embed in embeds:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


def flag_post_of(fake: FakeDiscord, case_id: str) -> dict[str, Any]:
    """The case's flag post in the mod channel, as it stands now."""
    [post] = [
        m
        for m in fake.messages_in(fake.mod_log)
        if m.get("embeds") and m["embeds"][0].get("footer", {}).get("text", "") == f"case {case_id}"
    ]
    return post


def appeal_post_of(fake: FakeDiscord, case_id: str) -> dict[str, Any]:
    [post] = [
        m
        for m in fake.messages_in(fake.mod_log)
        if m.get("embeds") and m["embeds"][0].get("title") == f"Appeal on case {case_id}"
    ]
    return post


def second_opinion_post_of(fake: FakeDiscord, case_id: str) -> dict[str, Any] | None:
    """The post a queued second opinion makes when it arrives (None until then)."""
    title = f"Second opinion on the appeal of case {case_id}"
    found = [m for m in fake.messages_in(fake.mod_log) if m.get("embeds") and m["embeds"][0].get("title") == title]
    return found[-1] if found else None


def enabled_buttons(message: dict[str, Any]) -> list[str]:
    return [
        c["custom_id"]
        for row in message.get("components") or []
        for c in row.get("components") or []
        if c.get("type") == 2 and not c.get("disabled")
    ]
