"""Why a workflow operation was refused. A refused operation has changed nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.policy_format import Problem


class WorkflowError(Exception):
    """A refusal meant for people: it says what was wrong, where, and what to do."""


class NotAuthorised(WorkflowError):
    pass


class NotFound(WorkflowError):
    pass


class Refused(WorkflowError):
    """The request is not valid in the current state (or its input is not valid)."""


class AlreadyDecided(Refused):
    def __init__(self, case_id: str, action: str, moderator_id: str, at: datetime, what: str) -> None:
        self.case_id = case_id
        self.action = action
        self.moderator_id = moderator_id
        self.at = at
        super().__init__(
            f"{what} of case {case_id} was already decided: {action} by {moderator_id} at "
            f"{at.strftime('%Y-%m-%d %H:%M UTC')}. A decision is made once; nothing was changed."
        )


class PolicyRejected(Refused):
    """The policy text does not pass validation; problems name file and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the policy was not saved; fix these and run the command again:\n{listing}")
