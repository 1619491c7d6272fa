"""A stored policy version as the document `/policy show` attaches and `/policy set` takes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.discord.policy_text import file_name, policy_document
from bot.domain import AuthorNotice, Policy
from bot.policy_format import parse_policy
from bot.policy_library import content_of
from tests.conftest import POLICY_DIR


@pytest.mark.parametrize("path", sorted(POLICY_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_a_stored_version_becomes_a_document_with_the_same_content(path: Path) -> None:
    content = content_of(parse_policy(path.read_text(encoding="utf-8")))
    stored = Policy(server_id="g", platform="discord", version=3, **content.model_dump())
    again = parse_policy(policy_document(stored))
    assert again.errors == [] and content_of(again) == content


def test_the_switches_and_the_author_notice_survive() -> None:
    stored = Policy(
        server_id="g",
        platform="discord",
        name="self-care",
        version=2,
        description="Check in: with care.",
        text="# Self care\n\n## INSTRUCTIONS\nx\n",
        sensitive=True,
        author_notice=AuthorNotice.SUPPORT,
        notice_text="We are here for you.\nCall a friend.",
    )
    document = policy_document(stored)
    assert document.startswith("---\nname: self-care\ndescription: Check in: with care.\nsensitive: true\n")
    parsed = parse_policy(document)
    assert (parsed.sensitive, parsed.author_notice, parsed.notice_text) == (True, "support", stored.notice_text)
    assert parsed.body == stored.text and parsed.description == stored.description
    assert file_name(stored) == "self-care-v2.md"
