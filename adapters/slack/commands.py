"""The slash commands' words: `/policy …` and `/modbot …` parsed into what to do, or the usage to show.

Pure, so that the listener can answer a mistyped command at once, in its acknowledgement,
without a lookup. The manifest sets `should_escape`, so Slack sends mentions and links as
`<…>` tokens and `&`, `<`, `>` as entities: the text is read as a person wrote it first
(adapters/slack/mapping.plain_text), as message text is at intake.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Mode

from .mapping import plain_text
from .render import escape

POLICY = "/policy"
MODBOT = "/modbot"

POLICY_USAGE = """*/policy* manages this workspace's policies (moderators only):
• `/policy list`: every policy, its version and switches
• `/policy show NAME [VERSION]`: a policy's text
• `/policy set [NAME]`: write a new version (a form opens)
• `/policy preview [NAME]`: judge recent messages with a draft; the report comes here when done
• `/policy apply DRAFT`: make a previewed draft live
• `/policy test NAME SAMPLE TEXT`: how the live policy judges a sample, now (only you see it)
• `/policy history NAME`, `/policy diff NAME OLD NEW`, `/policy rollback NAME VERSION`
• `/policy mode NAME enforce|shadow|default`, `/policy enable NAME`, `/policy disable NAME`
• `/policy templates`, `/policy install NAME…`: start from the policy library"""

MODBOT_USAGE = """*/modbot* sets modbot up for this workspace:
• `/modbot setup`: the moderators' channel, moderators, exemptions, mode and effects (a form opens)
• `/modbot status`: the model, the queue, Slack's limits and this workspace's set-up"""

_MODES = {"enforce": Mode.ENFORCE, "shadow": Mode.SHADOW, "default": None, "inherit": None}


class Usage(Exception):
    """The command was not understood; the message says how to write it."""


@dataclass(frozen=True)
class PolicyCommand:
    action: str
    name: str | None = None
    version: int | None = None
    old: int | None = None
    new: int | None = None
    mode: Mode | None = None
    draft: int | None = None
    sample: str = ""
    names: tuple[str, ...] = ()

    @property
    def slow(self) -> bool:
        """Work that takes the model's time: the acknowledgement says a reply follows."""
        return self.action == "test"


@dataclass(frozen=True)
class ModbotCommand:
    action: str


def _number(word: str, what: str) -> int:
    try:
        value = int(word.removeprefix("v"))
    except ValueError:
        raise Usage(f"{what} must be a number, not `{escape(word)}`") from None
    if value < 1:
        raise Usage(f"{what} must be 1 or more")
    return value


def _words(raw: str) -> tuple[str, list[str]]:
    text = plain_text(raw).strip()
    return text, text.split()


def parse_policy(raw: str) -> PolicyCommand:
    """`/policy …` as a PolicyCommand; Usage when it cannot be one (the message says how)."""
    text, words = _words(raw)
    if not words or words[0].lower() in ("help", "-h", "--help"):
        raise Usage(POLICY_USAGE)
    action, args = words[0].lower(), words[1:]

    def need(count: int, form: str) -> None:
        if len(args) != count:
            raise Usage(f"write it as `/policy {form}`")

    match action:
        case "list" | "templates":
            need(0, action)
            return PolicyCommand(action)
        case "show":
            if len(args) not in (1, 2):
                raise Usage("write it as `/policy show NAME` or `/policy show NAME VERSION`")
            version = _number(args[1], "the version") if len(args) == 2 else None
            return PolicyCommand(action, name=args[0], version=version)
        case "set" | "preview":
            if len(args) > 1:
                raise Usage(f"write it as `/policy {action}` or `/policy {action} NAME`: the text goes in the form")
            return PolicyCommand(action, name=args[0] if args else None)
        case "history" | "enable" | "disable":
            need(1, f"{action} NAME")
            return PolicyCommand(action, name=args[0])
        case "diff":
            need(3, "diff NAME OLD NEW")
            return PolicyCommand(action, name=args[0], old=_number(args[1], "OLD"), new=_number(args[2], "NEW"))
        case "rollback":
            need(2, "rollback NAME VERSION")
            return PolicyCommand(action, name=args[0], version=_number(args[1], "the version"))
        case "mode":
            need(2, "mode NAME enforce|shadow|default")
            if args[1].lower() not in _MODES:
                raise Usage(
                    "write it as `/policy mode NAME enforce|shadow|default` (default: follow the workspace's mode)"
                )
            return PolicyCommand(action, name=args[0], mode=_MODES[args[1].lower()])
        case "apply":
            need(1, "apply DRAFT")
            return PolicyCommand(action, draft=_number(args[0], "the draft id"))
        case "install":
            if not args:
                raise Usage("write it as `/policy install NAME…`; `/policy templates` lists the names")
            return PolicyCommand(action, names=tuple(args))
        case "test":
            if len(args) < 2:
                raise Usage("write it as `/policy test NAME SAMPLE TEXT`")
            # The sample is the rest of the text as typed, spacing and all.
            sample = text.split(None, 2)[2]
            return PolicyCommand(action, name=args[0], sample=sample)
        case _:
            raise Usage(f"`{escape(action)}` is not a /policy command.\n\n{POLICY_USAGE}")


def parse_modbot(raw: str) -> ModbotCommand:
    _, words = _words(raw)
    if not words or words[0].lower() in ("help", "-h", "--help"):
        raise Usage(MODBOT_USAGE)
    action = words[0].lower()
    if action not in ("setup", "status") or len(words) > 1:
        raise Usage(f"`{escape(' '.join(words))}` is not a /modbot command.\n\n{MODBOT_USAGE}")
    return ModbotCommand(action)
