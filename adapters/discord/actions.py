"""The buttons and the appeal form bound to the app's review and appeal services.

Every click becomes the core's `Actor` (platform "discord", the guild where it was clicked
or None in a DM, the member's roles there, admin for Administrator or Manage Server), and
the core authorises it again: a member who clicks Confirm is refused by the core, whatever
Discord showed them. Refusals come back as the core's own words, privately.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from adapters.discord.buttons import ClickActor
from adapters.discord.capabilities import PLATFORM
from adapters.discord.custom_ids import CaseAction
from adapters.discord.render import appeal_post
from adapters.discord.replies import Reply, appeal_filed_reply, decision_reply, reasoning_reply
from bot.domain import DecisionAction, EffectKind, ServerSettings
from bot.workflow.actors import Actor
from bot.workflow.errors import NotAuthorised, WorkflowError

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.workflow.review import DecisionOutcome

log = logging.getLogger(__name__)

# The Time out button's length when the server's rules name none (EffectRule's default).
DEFAULT_TIMEOUT_MINUTES = 10


def core_actor(actor: ClickActor) -> Actor:
    return Actor(
        id=actor.user_id,
        platform=PLATFORM,
        server_id=actor.server_id,
        roles=actor.role_ids,
        is_admin=actor.is_admin,
    )


def timeout_minutes(settings: ServerSettings) -> int:
    """How long the Time out button times out: the server's rule that times out, else its first rule's length."""
    rules = settings.effect_rules
    chosen = next((r for r in rules if EffectKind.TIMEOUT in r.effects), rules[0] if rules else None)
    return chosen.timeout_minutes if chosen is not None else DEFAULT_TIMEOUT_MINUTES


class AppCaseActions:
    """CaseActions over the app: reviews for the flag buttons, appeals for the form and Uphold/Overturn."""

    def __init__(self, app: ModbotApp) -> None:
        self.app = app

    async def review(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        who = core_actor(actor)
        reviews = self.app.reviews
        try:
            if action is CaseAction.DISMISS:
                outcome = await reviews.dismiss(case_id, who)
            elif action is CaseAction.CONFIRM_DELETE:
                outcome = await reviews.confirm(case_id, who, delete=True)
            elif action is CaseAction.TIMEOUT:
                outcome = await reviews.confirm(case_id, who, timeout_minutes=await self._timeout_minutes(who))
            elif action is CaseAction.CONFIRM:
                outcome = await reviews.confirm(case_id, who)
            else:
                raise ValueError(f"{action.value} is not a review")
        except WorkflowError as refused:
            return Reply.refused(refused, actor.user_id)
        return _decided(outcome)

    async def _timeout_minutes(self, who: Actor) -> int:
        """The length the server chose in /modbot setup (its rules'), not a fixed one."""
        try:
            return timeout_minutes(await self.app.server_settings.show(who))
        except NotAuthorised:
            return DEFAULT_TIMEOUT_MINUTES  # the review itself refuses them, in the core's words

    async def reasoning(self, actor: ClickActor, case_id: str) -> Reply:
        try:
            # The core shows a case (and its reasoning) to the server's moderators only.
            case, _decisions = await self.app.reviews.show(case_id, core_actor(actor))
        except WorkflowError as refused:
            return Reply.refused(refused, actor.user_id)
        return reasoning_reply(case)

    async def appeal(self, actor: ClickActor, case_id: str, statement: str) -> Reply:
        try:
            view = await self.app.appeals.file(case_id, core_actor(actor), statement)
        except WorkflowError as refused:
            return Reply.refused(refused, actor.user_id)
        return appeal_filed_reply(view)

    async def decide_appeal(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        who = core_actor(actor)
        appeals = self.app.appeals
        try:
            if action is CaseAction.UPHOLD:
                outcome = await appeals.uphold(case_id, who)
            elif action is CaseAction.OVERTURN:
                outcome = await appeals.overturn(case_id, who)
            else:
                raise ValueError(f"{action.value} is not an appeal decision")
            # The appeal post the moderator clicked shows the decision and disables its buttons.
            view = await appeals.view(case_id, who)
        except WorkflowError as refused:
            return Reply.refused(refused, actor.user_id)
        decided = _decided(outcome)
        return Reply(content=decided.content, embeds=decided.embeds, post_update=appeal_post(view))


def _decided(outcome: DecisionOutcome) -> Reply:
    action: DecisionAction = outcome.decision.action
    return decision_reply(action, outcome.case.id, outcome.effects, outcome.notes, outcome.strikes)
