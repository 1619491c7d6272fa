"""The custom_ids of modbot's buttons and forms: `modbot:<action>:<case_id>`.

The case id in the custom_id is all a click needs, so buttons keep working after a
restart (discord.py's DynamicItem matches TEMPLATE) and no per-message state is kept.
"""

from __future__ import annotations

import re
from enum import StrEnum


class CaseAction(StrEnum):
    # On a flag post, for moderators.
    CONFIRM = "confirm"
    CONFIRM_DELETE = "confirm-delete"
    TIMEOUT = "timeout"
    DISMISS = "dismiss"
    REASONING = "reasoning"
    # On the author's notice.
    APPEAL = "appeal"
    # On an appeal in the mod channel, for moderators.
    UPHOLD = "uphold"
    OVERTURN = "overturn"


# The case ids the core makes: 12 characters of Crockford's base32 (bot.pipeline.new_case_id).
CASE_ID_PATTERN = r"[0-9A-HJKMNP-TV-Z]{12}"
TEMPLATE = rf"modbot:(?P<action>{'|'.join(re.escape(a.value) for a in CaseAction)}):(?P<case_id>{CASE_ID_PATTERN})"
APPEAL_FORM_PREFIX = "modbot:appeal-form:"
APPEAL_FORM = re.compile(rf"{re.escape(APPEAL_FORM_PREFIX)}(?P<case_id>{CASE_ID_PATTERN})")
# The statement's field in the appeal form; the core stores at most 1,000 characters.
STATEMENT_FIELD = "statement"
STATEMENT_MAX = 1000


def button_id(action: CaseAction, case_id: str) -> str:
    return f"modbot:{action.value}:{case_id}"


def appeal_form_id(case_id: str) -> str:
    return f"{APPEAL_FORM_PREFIX}{case_id}"
