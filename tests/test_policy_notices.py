"""How a policy's notices read: front matter `sensitive` and `author_notice`, and the AUTHOR NOTICE section
that is stored with the policy but never sent to the model."""

from __future__ import annotations

from bot.domain import AuthorNotice
from bot.policy_format import parse_policy
from bot.policy_library import content_of, load_policies
from tests.conftest import POLICY_DIR
from tests.workflow.conftest import policy_text


def with_front_matter(text: str, *lines: str) -> str:
    head, sep, rest = text.partition("\n---\n")
    return head + "\n" + "\n".join(lines) + sep + rest


def test_the_author_notice_section_is_kept_apart_from_what_the_model_reads() -> None:
    text = with_front_matter(policy_text(), "author_notice: support", "sensitive: true")
    text += "\n## AUTHOR NOTICE\nWe care about you.\nCall someone you trust.\n"
    doc = parse_policy(text, source="p.md")
    assert doc.errors == []
    assert (doc.sensitive, doc.author_notice) == (True, "support")
    assert doc.notice_text == "We care about you.\nCall someone you trust."
    assert "AUTHOR NOTICE" not in doc.body and "We care" not in doc.body
    content = content_of(doc)
    assert (content.author_notice, content.sensitive, content.text) == (AuthorNotice.SUPPORT, True, doc.body)


def test_front_matter_values_are_checked_and_comments_allowed() -> None:
    doc = parse_policy(with_front_matter(policy_text(), "# why", "author_notice: gentle", "sensitive: yes"), "p.md")
    messages = [p.message for p in doc.errors]
    assert "author_notice 'gentle' must be one of removal, support" in messages
    assert "sensitive 'yes' must be true or false" in messages
    support_without_words = parse_policy(with_front_matter(policy_text(), "author_notice: support"), "p.md")
    assert any("needs a '## AUTHOR NOTICE' section" in p.message for p in support_without_words.errors)


def test_the_library_self_harm_policy_offers_support_and_the_doxxing_policies_are_sensitive() -> None:
    docs = {d.name: d for d in load_policies(sorted(POLICY_DIR.glob("*.md")))}
    self_harm = docs["self-harm"]
    assert self_harm.author_notice == "support"
    notice = self_harm.notice_text.lower()
    assert "helpline" in notice and "emergency" in notice
    # No removal wording and no appeal: it is not a sanction.
    assert not any(word in notice for word in ("removed", "deleted", "appeal", "violat", "rule"))
    assert docs["personal-info"].sensitive and docs["sexual-content"].sensitive
    assert all(d.author_notice == "removal" for name, d in docs.items() if name != "self-harm")
