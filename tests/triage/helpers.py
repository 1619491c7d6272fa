"""Builders shared by the triage tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain import Author, Message, Policy
from bot.policy_library import as_policy, library_files, load_policies

REPO = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO / "policies"
LISTS_DIR = POLICY_DIR / "lists"
DATA = Path(__file__).resolve().parent / "data"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def message(
    text: str,
    *,
    message_id: str = "m1",
    channel: str = "c1",
    author: str = "u1",
    server: str = "s1",
    platform: str = "discord",
    at: float = 0.0,
    edited: bool = False,
) -> Message:
    return Message(
        platform=platform,
        server_id=server,
        channel_id=channel,
        message_id=message_id,
        author=Author(id=author, name=f"name-{author}"),
        text=text,
        sent_at=T0 + timedelta(seconds=at),
        edited=edited,
        edited_at=T0 + timedelta(seconds=at) if edited else None,
    )


def library_policies(server: str = "s1") -> list[Policy]:
    return [as_policy(doc, server) for doc in load_policies(library_files(POLICY_DIR))]
