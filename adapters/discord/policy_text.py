"""A stored policy version as the file an admin edits: front matter, the model's text, the author notice.

`/policy set` opens its form with the live version's document and `/policy show` attaches
it, so that what an admin reads, edits and sends back is the whole policy: saving it
unchanged adds no version (the same content), and no switch (sensitive, author_notice) is
lost on the way.
"""

from __future__ import annotations

from bot.domain import AuthorNotice, Policy
from bot.policy_format import NOTICE_HEADING

# Discord's longest text input in a form; a longer policy is sent as an attached file.
FORM_TEXT_LIMIT = 4000
# The largest policy file taken from an attachment: TOKENS_MAX (10,000) tokens fit well within it.
MAX_POLICY_FILE_BYTES = 100_000
POLICY_FILE_SUFFIXES = (".md", ".markdown", ".txt")


def policy_document(policy: Policy) -> str:
    """The policy file that, parsed again, gives exactly this version's content."""
    front = ["---", f"name: {policy.name}", f"description: {policy.description}"]
    if policy.sensitive:
        front.append("sensitive: true")
    if policy.author_notice is not AuthorNotice.REMOVAL:
        front.append(f"author_notice: {policy.author_notice.value}")
    front.append("---")
    text = "\n".join(front) + "\n" + policy.text.rstrip("\n") + "\n"
    if policy.notice_text:
        text += f"\n{NOTICE_HEADING}\n{policy.notice_text}\n"
    return text


def file_name(policy: Policy) -> str:
    return f"{policy.name}-v{policy.version}.md"
