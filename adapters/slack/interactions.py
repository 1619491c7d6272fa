"""Slash commands, buttons and forms, bound to the core's services.

Acknowledged at once, worked on after. Bolt runs here with `process_before_response=True`
(adapters/slack/app.py: nothing acknowledged is lost), so Slack's answer waits for each
listener's *ack* function: those only parse, check a rate limit or a form's text, and
acknowledge: no Web API call, no store, no model. Everything else (who the person is,
the service call, modals, the reply) is a Bolt lazy listener, started once the ack is
done. So every interaction is answered within Slack's 3 seconds however slow Slack, the
store or the model are.

Errors are caught inside every listener and told to the person (a refusal in the core's
own words, or "modbot hit an error" with a reference to the log line), so an exception
never becomes Slack's "this app did not respond" or a 404.

Replies go where the person is: to the command's or the button's `response_url` (it
works in channels the bot is not in), else as an ephemeral message in the channel, else
as a DM. Moderators act in the workspace (`Actor.server_id` = the team); an author's
appeal from the bot's DM acts outside any server (`server_id=None`), as the core expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
from bot.domain import Author, EffectKind, EffectRule, Message, Mode, ServerSettings, utcnow
from bot.notices import AppealFiled
from bot.workflow.actors import Actor, require_moderator, settings_or_default
from bot.workflow.errors import AlreadyDecided, NotAuthorised, NotFound, PolicyRejected, Refused, WorkflowError
from bot.workflow.policies import templates, validate_policy

from . import render, replies
from .commands import MODBOT, POLICY, POLICY_USAGE, ModbotCommand, PolicyCommand, Usage, parse_modbot, parse_policy
from .config import DELETE_NEEDS_ADMIN_TOKEN, PLATFORM
from .mapping import plain_text
from .people import LookupFailed, People
from .render import SlackMessage
from .replies import Metadata

if TYPE_CHECKING:
    from bot.app import ModbotApp

    from .sink import SlackEffectSink

log = logging.getLogger(__name__)

# Bolt copies the request's context into the lazy listener's: the ack leaves its plan there.
PLAN = "modbot_plan"
FAILED = "failed"  # in a plan: the ack function failed, under this log reference
# /policy test calls the model now, for one person: a few a while, so a loop cannot hog it.
TESTS_PER_WINDOW = 5
TEST_WINDOW_SECONDS = 600.0
MAX_PREVIEW_MESSAGES = 1000
# The manifest's message shortcut, "Report to moderators".
REPORT_SHORTCUT = "modbot_report"
# Reports are for anyone: enough for a bad afternoon, too few to flood the moderators.
REPORTS_PER_WINDOW = 10
REPORT_WINDOW_SECONDS = 600.0
SLACK_MODERATORS = (
    "On Slack, moderators are workspace admins and owners, members of the moderator user groups, "
    "and the people named in /modbot setup."
)


class LazyWork:
    """Counts work acknowledged but not finished, so that a test (or a stop) can wait until none is left.

    The ack function counts the work in, before Slack's answer goes out; the lazy listener
    counts it out when it ends, whatever happened. Bolt starts every listener's lazy
    functions whatever its ack function did, so each count in has its count out.
    """

    def __init__(self) -> None:
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def expect(self) -> None:
        self._pending += 1
        self._idle.clear()

    def finished(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    @property
    def pending(self) -> int:
        return self._pending

    async def idle(self) -> None:
        await self._idle.wait()


class PerUserLimit:
    """At most `count` uses per user in any `window` seconds."""

    def __init__(
        self,
        count: int = TESTS_PER_WINDOW,
        window: float = TEST_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count, self.window, self.clock = count, window, clock
        self._uses: dict[str, deque[float]] = {}

    def wait(self, key: str) -> float | None:
        """None, and the use is counted; or how many seconds until the next use is allowed."""
        now = self.clock()
        uses = self._uses.setdefault(key, deque())
        while uses and now - uses[0] >= self.window:
            uses.popleft()
        if len(uses) >= self.count:
            return self.window - (now - uses[0])
        uses.append(now)
        if len(self._uses) > 10_000:  # forget people who have not tested for a while
            self._uses = {k: v for k, v in self._uses.items() if v and now - v[-1] < self.window}
        return None


@dataclass
class Responder:
    """Tells one person how their command, click or form went, wherever they are."""

    client: AsyncWebClient
    user_id: str
    response_url: str | None = None
    channel_id: str | None = None

    async def say(self, reply: SlackMessage) -> None:
        if self.response_url and await self._to_response_url(reply):
            return
        if self.channel_id and self.channel_id.startswith("D"):
            # The bot's DM with this person (an author's appeal): a message they keep.
            await self.client.chat_postMessage(channel=self.channel_id, text=reply.text, blocks=reply.blocks)
            return
        if self.channel_id:
            try:
                await self.client.chat_postEphemeral(
                    channel=self.channel_id, user=self.user_id, text=reply.text, blocks=reply.blocks
                )
                return
            except SlackApiError as exc:  # the bot is not in that channel: a DM instead
                log.info(
                    "slack: no ephemeral reply in %s (%s); replying by DM", self.channel_id, exc.response.get("error")
                )
        opened = await self.client.conversations_open(users=self.user_id)
        await self.client.chat_postMessage(channel=str(opened["channel"]["id"]), text=reply.text, blocks=reply.blocks)

    async def _to_response_url(self, reply: SlackMessage) -> bool:
        assert self.response_url is not None
        try:
            sent = await AsyncWebhookClient(self.response_url, timeout=10).send(
                text=reply.text, blocks=reply.blocks, response_type="ephemeral", replace_original=False
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("slack: response_url unreachable (%s); replying another way", type(exc).__name__)
            return False
        if sent.status_code != 200:  # expired (after 30 minutes or 5 uses), or refused
            log.info("slack: response_url answered %s; replying another way", sent.status_code)
            return False
        return True


def _reference() -> str:
    return "slack-" + secrets.token_hex(4)


def _user(body: Mapping[str, Any]) -> str:
    user = body.get("user")
    return str(user.get("id") if isinstance(user, Mapping) else body.get("user_id"))


def _team(body: Mapping[str, Any]) -> str:
    team = body.get("team")
    return str(team.get("id") if isinstance(team, Mapping) else body.get("team_id"))


def _action(body: Mapping[str, Any]) -> tuple[str, str, str]:
    """(action, case id, the button's value) of the button pressed."""
    pressed = (body.get("actions") or [{}])[0]
    parsed = render.parse_action_id(str(pressed.get("action_id", "")))
    if parsed is None:
        raise NotFound("that button is not one of modbot's")
    return parsed[0], parsed[1], str(pressed.get("value", ""))


def _container(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return channel, container.get("message_ts")


class Interactions:
    """The listeners for /policy, /modbot, the case and appeal buttons and the forms, over one app's services."""

    def __init__(
        self,
        services: ModbotApp,
        *,
        client: AsyncWebClient,
        people: People,
        sink: SlackEffectSink,
        work: LazyWork,
        connection: Callable[[], str],
        policy_dir: Path | None = None,
        test_limit: PerUserLimit | None = None,
    ) -> None:
        self.app = services
        self.client = client
        self.people = people
        self.sink = sink
        self.work = work
        self.connection = connection
        self.policy_dir = policy_dir
        self.test_limit = test_limit or PerUserLimit()
        self.report_limit = PerUserLimit(REPORTS_PER_WINDOW, REPORT_WINDOW_SECONDS)

    # ------------------------------------------------------------ wiring

    def register(self, bolt: AsyncApp) -> None:
        self._listen(bolt.command(POLICY), "policy", self._ack_policy, self._policy)
        self._listen(bolt.command(MODBOT), "modbot", self._ack_modbot, self._modbot)
        self._listen(bolt.action(render.ACTION_ID_PATTERN), "button", self._ack_button, self._button)
        self._listen(bolt.shortcut(REPORT_SHORTCUT), "report", self._ack_button, self._report)
        for callback_id, check, work in (
            (replies.POLICY_SET_VIEW, self._check_policy_form, self._policy_form),
            (replies.POLICY_PREVIEW_VIEW, self._check_policy_form, self._policy_form),
            (replies.SETUP_VIEW, self._check_nothing, self._setup_form),
            (replies.APPEAL_VIEW, self._check_appeal_form, self._appeal_form),
            (replies.DECIDE_APPEAL_VIEW, self._check_note_form, self._decide_appeal_form),
            (replies.REPORT_VIEW, self._check_nothing, self._report_form),
        ):
            self._listen(bolt.view(callback_id), callback_id.replace(":", "_"), check, work)

    def _listen(
        self,
        register: Callable[..., Any],
        name: str,
        acknowledge: Callable[[AsyncAck, dict[str, Any]], Awaitable[dict[str, Any] | None]],
        work: Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]],
    ) -> None:
        """One listener: `acknowledge` answers Slack and returns the plan; `work`, lazily, carries it out."""

        async def ack_function(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
            self.work.expect()
            plan: dict[str, Any] | None = None
            try:
                plan = await acknowledge(ack, body)
            except Exception:
                reference = _reference()
                log.exception("slack: acknowledging %s failed (%s)", name, reference)
                # Acknowledged all the same (an unanswered request is an error in Slack's client);
                # the person is told by the lazy listener, which knows where they are.
                plan = {FAILED: reference}
            finally:
                if ack.response is None:
                    await ack()
                context[PLAN] = plan

        async def lazy_function(body: dict[str, Any], context: AsyncBoltContext) -> None:
            try:
                plan = context.get(PLAN)
                if plan is not None and FAILED in plan:
                    await self._guard(self._responder_for(body), name, _fail_with(plan[FAILED]))
                elif plan is not None:
                    await work(body, plan)
            except Exception:  # _guard tells the person; this is for a failure to tell them
                log.exception("slack: %s failed after it was acknowledged", name)
            finally:
                self.work.finished()

        ack_function.__name__ = ack_function.__qualname__ = f"acknowledge_{name}"
        lazy_function.__name__ = lazy_function.__qualname__ = f"carry_out_{name}"
        register(ack=ack_function, lazy=[lazy_function])

    async def _guard(
        self, responder: Responder, what: str, action: Callable[[], Awaitable[SlackMessage | None]]
    ) -> None:
        """Run the work; whatever happens, tell the person."""
        reply: SlackMessage | None
        try:
            reply = await action()
        except NotAuthorised as exc:
            reply = replies.refusal(f"{exc} {SLACK_MODERATORS}")
        except WorkflowError as exc:
            reply = replies.refusal(str(exc))
        except LookupFailed as exc:
            reply = replies.refusal(f"{exc}, so modbot cannot check your rights now: try again in a minute.")
        except (ModelUnavailable, ModelRequestRejected) as exc:
            reply = replies.refusal(f"the model did not answer ({exc}): try again when it is back.")
        except SlackApiError as exc:
            reference = _reference()
            log.warning("slack: %s: Slack said %s (%s)", what, exc.response.get("error"), reference)
            reply = replies.refusal(f"Slack refused part of it ({exc.response.get('error')}); reference {reference}.")
        except Exception:
            reference = _reference()
            log.exception("slack: %s failed (%s)", what, reference)
            reply = replies.failure(reference)
        if reply is None:
            return
        try:
            await responder.say(reply)
        except Exception:
            log.exception("slack: could not tell %s how %s went", responder.user_id, what)

    def _responder_for(self, body: Mapping[str, Any]) -> Responder:
        """Where to answer whoever sent this command, click, shortcut or form."""
        view = body.get("view")
        if isinstance(view, Mapping):
            meta = Metadata.load(view.get("private_metadata"))
            return Responder(self.client, _user(body), meta.response_url, meta.channel)
        channel = body.get("channel_id") or _container(body)[0]
        return Responder(self.client, _user(body), body.get("response_url"), channel)

    async def _moderator(self, user_id: str, team_id: str) -> tuple[Actor, ServerSettings]:
        """The person as the core sees them in this workspace, and the workspace's settings."""
        settings = await settings_or_default(self.app.store, PLATFORM, team_id)
        return await self.people.actor(user_id, settings), settings

    # ------------------------------------------------------------ /policy

    async def _ack_policy(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            command = parse_policy(str(body.get("text", "")))
        except Usage as usage:
            await ack(blocks=replies.message(str(usage)).blocks, text="How to use /policy")
            return None
        if command.action == "test":
            wait = self.test_limit.wait(f"{_team(body)}/{_user(body)}")
            if wait is not None:
                await ack(
                    f"You can test {self.test_limit.count} samples every {self.test_limit.window / 60:.0f} minutes: "
                    f"the next one in {wait / 60:.0f} minute(s)."
                )
                return None
            await ack("Testing your sample against the live policy; the result comes here in a moment.")
        else:
            await ack()
        return {"text": str(body.get("text", ""))}

    async def _policy(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        command = parse_policy(plan["text"])
        responder = Responder(self.client, _user(body), body.get("response_url"), body.get("channel_id"))
        await self._guard(responder, f"/policy {command.action}", lambda: self._run_policy(command, body))

    async def _run_policy(self, command: PolicyCommand, body: dict[str, Any]) -> SlackMessage | None:
        actor, settings = await self._moderator(_user(body), _team(body))
        policies = self.app.policies
        name = command.name or ""
        match command.action:
            case "list":
                return replies.policy_list(await policies.list_policies(actor))
            case "show":
                policy = await policies.show(actor, name, command.version)
                return replies.policy_text(policy, await self.sink.directory([policy.author]))
            case "history":
                history = await policies.history(actor, name)
                people = [p.author for p in history.versions] + [c.actor for c in history.changes]
                return replies.policy_history(history, await self.sink.directory(people))
            case "diff":
                assert command.old is not None and command.new is not None
                diff = await policies.diff(actor, name, command.old, command.new)
                title = f"*{render.escape(name)}* v{command.old} → v{command.new}"
                return replies.code(title, diff or "(the two versions are the same)")
            case "rollback":
                assert command.version is not None
                policy = await policies.rollback(actor, name, command.version)
                return replies.message(
                    f"*{render.escape(name)}* is now v{policy.version}, the text of v{command.version}."
                    " It judges messages from now on."
                )
            case "mode":
                state = await policies.set_mode(actor, name, command.mode)
                mode = state.mode.value if state.mode else "the workspace's mode"
                return replies.message(f"*{render.escape(name)}* now runs in {mode}.")
            case "enable" | "disable":
                state = await (policies.enable if command.action == "enable" else policies.disable)(actor, name)
                return replies.message(f"*{render.escape(name)}* is {'on' if state.enabled else 'off'}.")
            case "apply":
                assert command.draft is not None
                return await self._apply(actor, command.draft)
            case "templates":
                return self._templates()
            case "install":
                if self.policy_dir is None:
                    return replies.refusal("this bot was started without a policy library")
                installed = await policies.install_templates(actor, list(command.names), self.policy_dir)
                listing = ", ".join(f"{render.escape(p.name)} v{p.version}" for p in installed)
                return replies.message(f"Installed {listing}. They judge messages from now on.")
            case "set" | "preview":
                await self._open_policy_form(actor, settings, command, body)
                return None
            case "test":
                return await self._test(actor, settings, command, body)
        return replies.message(POLICY_USAGE)

    def _templates(self) -> SlackMessage:
        found = templates(self.policy_dir) if self.policy_dir is not None else []
        if not found:
            return replies.message("No policy library is available to this bot.")
        lines = ["*The policy library* (`/policy install NAME…` adds one to this workspace)"]
        lines += [f"• *{render.escape(t.name)}* (~{t.tokens} tokens): {render.escape(t.description)}" for t in found]
        return replies.message("\n".join(lines))

    async def _open_policy_form(
        self, actor: Actor, settings: ServerSettings, command: PolicyCommand, body: dict[str, Any]
    ) -> None:
        require_moderator(actor, settings, "change policies")
        text = ""
        if command.name:
            try:
                text = replies.document_text(await self.app.policies.show(actor, command.name))
            except NotFound:
                text = ""  # a new policy
        callback = replies.POLICY_PREVIEW_VIEW if command.action == "preview" else replies.POLICY_SET_VIEW
        meta = Metadata(response_url=body.get("response_url"), channel=body.get("channel_id"))
        view = replies.policy_modal(callback, meta, name=command.name, text=text)
        await self.client.views_open(trigger_id=body["trigger_id"], view=view)

    async def _test(
        self, actor: Actor, settings: ServerSettings, command: PolicyCommand, body: dict[str, Any]
    ) -> SlackMessage:
        policy = await self.app.policies.show(actor, command.name or "")
        sample = Message(
            platform=PLATFORM,
            server_id=settings.server_id,
            channel_id=str(body.get("channel_id") or "test"),
            message_id=f"test:{secrets.token_hex(6)}",
            author=Author(id=actor.id, name=str(body.get("user_name") or actor.id)),
            text=command.sample,
            sent_at=utcnow(),
        )
        verdict = await self.app.classifier.classify(ClassificationRequest(policy, sample, settings.effort))
        return replies.test_result(policy, verdict, command.sample)

    async def _apply(self, actor: Actor, draft_id: int) -> SlackMessage:
        policy = await self.app.preview.apply(actor, draft_id)
        return replies.message(
            f"Draft {draft_id} is live as *{render.escape(policy.name)}* v{policy.version}. "
            "It judges messages from now on."
        )

    # ------------------------------------------------------------ policy forms

    @staticmethod
    def _policy_text(values: Mapping[str, Any]) -> str:
        parts = [str(values.get(replies.TEXT) or ""), str(values.get(replies.MORE) or "")]
        return "\n".join(p.strip("\n") for p in parts if p.strip()).strip()

    async def _check_policy_form(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        """Refuse a policy that does not parse in the form itself, naming its lines: no lookup, so at once."""
        view = body["view"]
        values = replies.state_values(view)
        name = str(values.get(replies.NAME) or "").strip() or None
        errors: dict[str, str] = {}
        try:
            validate_policy(self._policy_text(values), name, source="the form")
        except PolicyRejected as exc:
            problems = "; ".join(f"line {p.line}: {p.message}" for p in exc.problems)
            errors[replies.TEXT] = problems[:1500]
        if view.get("callback_id") == replies.POLICY_PREVIEW_VIEW:
            last = str(values.get(replies.LAST) or "").strip()
            if not last.isdigit() or not 1 <= int(last) <= MAX_PREVIEW_MESSAGES:
                errors[replies.LAST] = f"A number from 1 to {MAX_PREVIEW_MESSAGES}"
        if errors:
            await ack(response_action="errors", errors=errors)
            return None
        await ack()
        return {}

    async def _policy_form(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        view = body["view"]
        meta = Metadata.load(view.get("private_metadata"))
        responder = Responder(self.client, _user(body), meta.response_url, meta.channel)
        values = replies.state_values(view)
        name = str(values.get(replies.NAME) or "").strip() or None
        text = self._policy_text(values)

        async def save() -> SlackMessage:
            actor, _ = await self._moderator(_user(body), _team(body))
            result = await self.app.policies.set(actor, text, name=name, source="the form")
            warnings = "".join(f"\n_warning: {render.escaped_within(w, 300)}_" for w in result.warnings[:5])
            if not result.changed:
                return replies.message(
                    f"*{render.escape(result.policy.name)}* v{result.policy.version} already says that:"
                    f" nothing was saved.{warnings}"
                )
            was = f" (was v{result.previous_version})" if result.previous_version else " (a new policy)"
            return replies.message(
                f"Saved *{render.escape(result.policy.name)}* v{result.policy.version}{was}."
                f" It judges messages from now on.{warnings}"
            )

        async def preview() -> SlackMessage:
            actor, _ = await self._moderator(_user(body), _team(body))
            last = int(str(values.get(replies.LAST) or "100"))
            await responder.say(
                replies.message(f"Judging the last {last} messages with your draft; the report comes here when done.")
            )
            report = await self.app.preview.preview(actor, text, name=name, last=last, source="the form")
            return replies.preview_report(report)

        if view.get("callback_id") == replies.POLICY_PREVIEW_VIEW:
            await self._guard(responder, "/policy preview", preview)
        else:
            await self._guard(responder, "/policy set", save)

    # ------------------------------------------------------------ /modbot

    async def _ack_modbot(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            parse_modbot(str(body.get("text", "")))
        except Usage as usage:
            await ack(blocks=replies.message(str(usage)).blocks, text="How to use /modbot")
            return None
        await ack()
        return {"text": str(body.get("text", ""))}

    async def _modbot(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        command = parse_modbot(plan["text"])
        responder = Responder(self.client, _user(body), body.get("response_url"), body.get("channel_id"))
        await self._guard(responder, f"/modbot {command.action}", lambda: self._run_modbot(command, body))

    async def _run_modbot(self, command: ModbotCommand, body: dict[str, Any]) -> SlackMessage | None:
        actor, settings = await self._moderator(_user(body), _team(body))
        if command.action == "setup":
            current = await self.app.server_settings.show(actor)  # moderators only
            groups = await self._user_groups()
            meta = Metadata(response_url=body.get("response_url"), channel=body.get("channel_id"))
            view = replies.setup_modal(
                current,
                meta,
                groups=groups,
                can_delete=EffectKind.DELETE in self.sink.supported_effects,
                delete_limit=DELETE_NEEDS_ADMIN_TOKEN,
            )
            await self.client.views_open(trigger_id=body["trigger_id"], view=view)
            return None
        return await self._status(actor, settings)

    async def _user_groups(self) -> list[tuple[str, str]] | None:
        """The workspace's user groups (id, handle), or None when it has none to offer (a free plan)."""
        try:
            found = (await self.client.usergroups_list())["usergroups"]
        except SlackApiError as exc:
            log.info("slack: no user groups to offer (%s)", exc.response.get("error"))
            return None
        return [(str(g["id"]), str(g.get("handle") or g.get("name") or g["id"])) for g in found] or None

    async def _status(self, actor: Actor, settings: ServerSettings) -> SlackMessage:
        current = await self.app.server_settings.show(actor)  # moderators only
        report = await self.app.status.report()
        open_cases = len(await self.app.reviews.open_cases(actor, limit=500))
        waiting = len(await self.app.appeals.waiting(actor))
        policies = len(await self.app.policies.list_policies(actor))
        operator = [line for line in report.lines() if not line.startswith(("store:", "platform", "  "))]
        problems = [*self.app.catalog.unsupported(current)]
        declared = self.app.catalog.get(PLATFORM)
        # What Slack, as this bot is configured, cannot do: timeouts never, delete without the admin token.
        limits = [
            f"{kind.value}: {reason}"
            for kind, reason in sorted((declared.limits if declared else {}).items())
            if kind is not EffectKind.LIFT_TIMEOUT
        ]
        if not current.mod_channel_id:
            problems.append("no moderators' channel is set: choose one with /modbot setup")
        if not policies:
            problems.append("no policy yet: /policy templates, then /policy install NAME")
        ids_as_groups = [r for r in current.moderator_role_ids if not r.startswith("S")]
        if ids_as_groups:
            problems.append(
                f"moderator_role_ids holds {', '.join(ids_as_groups)}, which are not user groups: "
                "name people as moderators in /modbot setup instead"
            )
        groups = await self._user_groups() or []
        return replies.status(
            [*operator, *(f"Slack cannot {limit}" for limit in limits)],
            current,
            open_cases=open_cases,
            waiting_appeals=waiting,
            policies=policies,
            connection=self.connection(),
            problems=problems,
            directory=await self.sink.directory(current.moderator_user_ids),
            group_handles=dict(groups),
        )

    async def _check_nothing(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        await ack()
        return {}

    async def _setup_form(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        view = body["view"]
        meta = Metadata.load(view.get("private_metadata"))
        responder = Responder(self.client, _user(body), meta.response_url, meta.channel)
        values = replies.state_values(view)

        async def save() -> SlackMessage:
            actor, _ = await self._moderator(_user(body), _team(body))
            current = await self.app.server_settings.show(actor)
            changes = setup_changes(current, values)
            if not changes:
                return replies.message("Nothing changed.")
            updated = await self.app.server_settings.update(actor, changes)
            lines = ["Saved: " + ", ".join(sorted(changes)).replace("_", " ") + "."]
            if "mod_channel_id" in changes and updated.mod_channel_id:
                lines.append(await self._greet_mod_channel(updated.mod_channel_id, actor.id))
            return replies.message("\n".join(lines))

        await self._guard(responder, "/modbot setup", save)

    async def _greet_mod_channel(self, channel: str, by: str) -> str:
        """Say hello in the new moderators' channel; this is also how modbot learns it may post there."""
        directory = await self.sink.directory([by])
        hello = f"modbot posts flags and appeals here from now on (set by {directory.person(by)})."
        try:
            await self.client.chat_postMessage(
                channel=channel,
                text="modbot posts flags here",
                blocks=[render.section(hello)],
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("not_in_channel", "channel_not_found"):
                return (
                    f":warning: modbot cannot post in {render.channel_ref(channel)}: invite it there with "
                    "`/invite @modbot`, or flags will fail."
                )
            raise
        return f"modbot said hello in {render.channel_ref(channel)}."

    # ------------------------------------------------------------ buttons

    async def _ack_button(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        await ack()
        return {}

    async def _button(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        channel, ts = _container(body)
        responder = Responder(self.client, _user(body), body.get("response_url"), channel)
        try:
            action, case_id, value = _action(body)
        except NotFound as exc:
            await self._guard(responder, "a button", _raise(exc))
            return

        async def press() -> SlackMessage | None:
            if action == render.APPEAL:
                return await self._appeal_button(case_id, body, channel, ts)
            actor, settings = await self._moderator(_user(body), _team(body))
            match action:
                case render.CONFIRM | render.CONFIRM_DELETE:
                    outcome = await self.app.reviews.confirm(case_id, actor, delete=action == render.CONFIRM_DELETE)
                    return replies.decision_reply(outcome)
                case render.DISMISS:
                    return replies.decision_reply(await self.app.reviews.dismiss(case_id, actor))
                case render.SHOW_REASONING:
                    require_moderator(actor, settings, "see the model's reasoning")
                    case, decisions = await self.app.reviews.show(case_id, actor)
                    people = [d.moderator_id for d in decisions]
                    return replies.reasoning(case, decisions, await self.sink.directory(people))
                case render.UPHOLD | render.OVERTURN:
                    require_moderator(actor, settings, "decide appeals")
                    meta = Metadata(
                        channel=channel,
                        ts=ts,
                        case_id=case_id,
                        action=action,
                        appeal_id=int(value) if value.isdigit() else None,
                    )
                    view = replies.decide_appeal_modal(action, case_id, meta)
                    await self.client.views_open(trigger_id=body["trigger_id"], view=view)
                    return None
                case render.APPLY:
                    return await self._apply(actor, int(case_id))
            raise NotFound(f"modbot has no button {action!r}")

        await self._guard(responder, f"the {action} button", press)

    async def _appeal_button(
        self, case_id: str, body: dict[str, Any], channel: str | None, ts: str | None
    ) -> SlackMessage | None:
        """The author's Appeal button, in the bot's DM: the form, unless they appealed already."""
        author = self._author(_user(body))
        try:
            earlier = await self.app.appeals.view(case_id, author)
        except NotAuthorised as exc:
            # The core refuses anyone but the author acting from a DM; said in an author's words.
            raise Refused(f"only the author of the message may appeal case {case_id}") from exc
        except NotFound:
            meta = Metadata(channel=channel, ts=ts, case_id=case_id)
            await self.client.views_open(trigger_id=body["trigger_id"], view=replies.appeal_modal(case_id, meta))
            return None
        return replies.message(
            f"You appealed case `{render.escape(case_id)}` at {render.when(earlier.filed_at)}; "
            f"the appeal is {earlier.appeal_status.value}. A case can be appealed once."
        )

    @staticmethod
    def _author(user_id: str) -> Actor:
        """An author acting on their own case: the Appeal button is in the bot's DM, outside any server."""
        return Actor(id=user_id, platform=PLATFORM, server_id=None)

    # ------------------------------------------------------------ appeal forms

    async def _check_appeal_form(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        statement = str(replies.state_values(body["view"]).get(replies.STATEMENT) or "").strip()
        if not statement:
            await ack(response_action="errors", errors={replies.STATEMENT: "Say why the decision is wrong."})
            return None
        if len(statement) > replies.MAX_NOTE:
            await ack(response_action="errors", errors={replies.STATEMENT: f"At most {replies.MAX_NOTE} characters."})
            return None
        await ack()
        return {}

    async def _appeal_form(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        view = body["view"]
        meta = Metadata.load(view.get("private_metadata"))
        responder = Responder(self.client, _user(body), None, meta.channel)
        statement = str(replies.state_values(view).get(replies.STATEMENT) or "").strip()

        async def file() -> SlackMessage:
            filed = await self.app.appeals.file(meta.case_id or "", self._author(_user(body)), statement)
            return replies.message(
                f"Your appeal of case `{render.escape(filed.case_id)}` is with the moderators. "
                "You will hear how it ends here."
            )

        await self._guard(responder, "an appeal", file)

    async def _check_note_form(self, ack: AsyncAck, body: dict[str, Any]) -> dict[str, Any] | None:
        note = str(replies.state_values(body["view"]).get(replies.NOTE) or "")
        if len(note.strip()) > replies.MAX_NOTE:
            await ack(response_action="errors", errors={replies.NOTE: f"At most {replies.MAX_NOTE} characters."})
            return None
        await ack()
        return {}

    async def _decide_appeal_form(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        view = body["view"]
        meta = Metadata.load(view.get("private_metadata"))
        responder = Responder(self.client, _user(body), None, meta.channel)
        note = str(replies.state_values(view).get(replies.NOTE) or "").strip()
        case_id = meta.case_id or ""

        async def decide() -> SlackMessage:
            actor, _ = await self._moderator(_user(body), _team(body))
            appeals = self.app.appeals
            try:
                if meta.action == render.OVERTURN:
                    outcome = await appeals.overturn(case_id, actor, note=note)
                else:
                    outcome = await appeals.uphold(case_id, actor, note=note)
            except AlreadyDecided:
                await self._refresh_appeal_post(case_id, actor, meta)  # its buttons may be stale
                raise
            await self._refresh_appeal_post(case_id, actor, meta)
            return replies.decision_reply(outcome)

        await self._guard(responder, "an appeal decision", decide)

    async def _refresh_appeal_post(self, case_id: str, actor: Actor, meta: Metadata) -> None:
        """Rewrite the appeal's post in the moderators' channel as decided, without its buttons."""
        if not meta.channel or not meta.ts:
            return
        appeal = await self.app.appeals.view(case_id, actor)
        directory = await self.sink.directory([appeal.author_id, appeal.decided_by])
        post = render.notice_message(AppealFiled(appeal=appeal), directory=directory)
        await self.client.chat_update(channel=meta.channel, ts=meta.ts, text=post.text, blocks=post.blocks)

    # ------------------------------------------------------------ member reports

    async def _report(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        """The "Report to moderators" shortcut on a message: a short form, for any member."""
        user = _user(body)
        channel = str((body.get("channel") or {}).get("id") or "") or None
        responder = Responder(self.client, user, body.get("response_url"), channel)
        reported = body.get("message") or {}

        async def open_form() -> SlackMessage | None:
            if reported.get("bot_id") or reported.get("subtype") == "bot_message":
                return replies.message("That message is a bot's: tell the moderators directly if it is wrong.")
            wait = self.report_limit.wait(f"{_team(body)}/{user}")
            if wait is not None:
                return replies.message(
                    f"You have reported {self.report_limit.count} messages in the last "
                    f"{self.report_limit.window / 60:.0f} minutes: the next one in {wait / 60:.0f} minute(s)."
                )
            meta = Metadata(
                response_url=body.get("response_url"),
                channel=channel,
                ts=str(reported.get("ts") or "") or None,
                author=str(reported.get("user") or "") or None,
                excerpt=plain_text(str(reported.get("text") or ""))[: replies.REPORT_EXCERPT],
            )
            await self.client.views_open(trigger_id=body["trigger_id"], view=replies.report_modal(meta))
            return None

        await self._guard(responder, "a report", open_form)

    async def _report_form(self, body: dict[str, Any], plan: dict[str, Any]) -> None:
        view = body["view"]
        meta = Metadata.load(view.get("private_metadata"))
        reporter = _user(body)
        responder = Responder(self.client, reporter, meta.response_url, meta.channel)
        reason = str(replies.state_values(view).get(replies.REASON) or "").strip()

        async def send() -> SlackMessage:
            settings = await settings_or_default(self.app.store, PLATFORM, _team(body))
            if not settings.mod_channel_id:
                return replies.refusal(
                    "this workspace has no moderators' channel yet, so the report could not be sent: "
                    "tell a moderator directly"
                )
            permalink = None
            if meta.channel and meta.ts:
                with contextlib.suppress(SlackApiError):  # a report goes out without its link
                    permalink = str(
                        (await self.client.chat_getPermalink(channel=meta.channel, message_ts=meta.ts))["permalink"]
                    )
            directory = await self.sink.directory([reporter, meta.author])
            report = replies.member_report(meta, reporter, reason, permalink=permalink, directory=directory)
            await self.client.chat_postMessage(
                channel=settings.mod_channel_id, text=report.text, blocks=report.blocks, unfurl_links=False
            )
            return replies.message("Thank you: the moderators have your report.")

        await self._guard(responder, "a report", send)


def _raise(exc: Exception) -> Callable[[], Awaitable[SlackMessage | None]]:
    async def fail() -> SlackMessage | None:
        raise exc

    return fail


def _fail_with(reference: str) -> Callable[[], Awaitable[SlackMessage | None]]:
    async def failed() -> SlackMessage | None:
        return replies.failure(reference)

    return failed


def setup_changes(current: ServerSettings, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a submitted /modbot setup form changes (only those: a moderator may save without admin rights)."""
    wanted: dict[str, Any] = {}
    if values.get(replies.MOD_CHANNEL):
        wanted["mod_channel_id"] = str(values[replies.MOD_CHANNEL])
    for block, key in (
        (replies.MOD_GROUPS, "moderator_role_ids"),
        (replies.MOD_USERS, "moderator_user_ids"),
        (replies.EXEMPT_GROUPS, "exempt_role_ids"),
        (replies.EXEMPT_CHANNELS, "exempt_channel_ids"),
    ):
        if block in values:
            wanted[key] = tuple(str(v) for v in values[block] or ())
    if values.get(replies.MODE):
        wanted["mode"] = Mode(str(values[replies.MODE]))
    if replies.EFFECTS in values and replies.simple_effects(current) is not None:
        rule = current.effect_rules[0]
        kinds = tuple(EffectKind(v) for v in values[replies.EFFECTS] or ())
        if set(kinds) != set(rule.effects):
            wanted["effect_rules"] = (EffectRule.model_validate({**rule.model_dump(), "effects": kinds}),)
    return {key: value for key, value in wanted.items() if getattr(current, key) != value}


__all__ = ["Interactions", "LazyWork", "PerUserLimit", "Responder", "setup_changes"]
