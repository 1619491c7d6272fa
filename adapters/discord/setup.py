"""`/modbot setup`: a server's settings through select menus, three pages, each change saved through the core.

Nothing is kept between clicks: every select names the setting it changes in its
custom_id (`modbot:setup:<setting>`), the core authorises and saves each change at once,
and the page is drawn again from the saved settings. So a half-finished setup is never
lost, and it works the same after a restart.

The verdict → action mapping is two rules: what every violation gets, and what a
high-confidence violation gets as well. A new server gets the core's default: flag only.
Each page ends with the bot's own permissions checked against what the settings ask of it
(in the mod channel, in every moderated channel, server-wide), naming exactly what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from adapters.discord.render import BLURPLE, GOLD, add_fields, finish, new_embed
from bot.domain import Confidence, ConfirmNotice, EffectKind, EffectRule, Mode, ServerSettings

SETUP_PREFIX = "modbot:setup:"
PAGE_PREFIX = "modbot:setup-page:"
SETUP_FIELD = re.compile(r"modbot:setup:(?P<setting>[a-z_]+)")
SETUP_PAGE = re.compile(r"modbot:setup-page:(?P<page>[a-z]+)")


class Page:
    WHERE = "where"
    ACTIONS = "actions"
    OPTIONS = "options"
    DONE = "done"


PAGES = (Page.WHERE, Page.ACTIONS, Page.OPTIONS)
PAGE_TITLES = {
    Page.WHERE: "Who and where",
    Page.ACTIONS: "What happens on a violation",
    Page.OPTIONS: "Notifications and proxies",
}
# What the mapping selects offer, in the order effects run.
EFFECT_CHOICES: tuple[tuple[EffectKind, str, str], ...] = (
    (EffectKind.FLAG, "Flag in the mod channel", "A post with Confirm, Dismiss and the rules broken"),
    (EffectKind.DM_MODERATORS, "DM the moderators", "Members with a moderator role get the flag by DM"),
    (EffectKind.DELETE, "Delete the message", "Needs Manage Messages in the channel"),
    (EffectKind.TIMEOUT, "Time out the author", "Needs Moderate Members, and modbot's role above theirs"),
    (EffectKind.NOTIFY_AUTHOR, "Tell the author by DM", "The rules broken, with an Appeal button"),
)
TIMEOUT_CHOICES = ((10, "10 minutes"), (60, "1 hour"), (1440, "1 day"), (10080, "1 week"))
CONFIRM_NOTICE_CHOICES = (
    (ConfirmNotice.WITH_ACTION, "When a moderator deletes or times out", "The author sees a consequence: tell why"),
    (ConfirmNotice.ALWAYS, "On every confirmation", "Even a bare confirmation is told to the author"),
    (ConfirmNotice.NEVER, "Never", "Confirmations stay between moderators"),
)
_MAX_LISTED = 8  # channels named in one permission line before "and N more"


class SetupError(ValueError):
    """A select's values that do not make a setting (a forged or stale interaction)."""


# ---------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class ActionMapping:
    """The two-rule verdict → action mapping the setup edits."""

    every: tuple[EffectKind, ...]
    high: tuple[EffectKind, ...]  # in addition, at high confidence
    timeout_minutes: int
    # The server's rules do not have this shape (set from the command line: per-policy or
    # medium-confidence rules); choosing here replaces them.
    custom: bool

    def rules(self) -> tuple[EffectRule, ...]:
        rules = []
        if self.every:
            rules.append(
                EffectRule(min_confidence=Confidence.LOW, effects=self.every, timeout_minutes=self.timeout_minutes)
            )
        extra = tuple(k for k in self.high if k not in self.every)
        if extra:
            rules.append(
                EffectRule(min_confidence=Confidence.HIGH, effects=extra, timeout_minutes=self.timeout_minutes)
            )
        return tuple(rules)


def mapping_of(settings: ServerSettings) -> ActionMapping:
    every: list[EffectKind] = []
    high: list[EffectKind] = []
    custom = False
    minutes = [r.timeout_minutes for r in settings.effect_rules if EffectKind.TIMEOUT in r.effects]
    for rule in settings.effect_rules:
        if rule.policies is not None or rule.min_confidence is Confidence.MEDIUM:
            custom = True
            continue
        (every if rule.min_confidence is Confidence.LOW else high).extend(rule.effects)
    order = [kind for kind, _, _ in EFFECT_CHOICES]
    every_kinds = tuple(k for k in order if k in every)
    high_kinds = tuple(k for k in order if k in high and k not in every_kinds)
    timeout = minutes[0] if minutes else (settings.effect_rules[0].timeout_minutes if settings.effect_rules else 10)
    return ActionMapping(every_kinds, high_kinds, timeout, custom)


def changes_for(setting: str, values: Sequence[str], current: ServerSettings) -> dict[str, Any]:
    """The settings change one select asks for; refused (SetupError) if its values make none."""
    ids = tuple(v for v in values if v.isdigit())
    if len(ids) != len(values) and setting in ("mod_channel", "moderator_roles", "exempt_roles", "exempt_channels"):
        raise SetupError(f"{setting} takes Discord ids, not {list(values)!r}")
    match setting:
        case "mod_channel":
            return {"mod_channel_id": ids[0] if ids else None}
        case "moderator_roles":
            return {"moderator_role_ids": ids}
        case "exempt_roles":
            return {"exempt_role_ids": ids}
        case "exempt_channels":
            return {"exempt_channel_ids": ids}
        case "mode":
            return {"mode": Mode(_one(values))}
        case "effects_every" | "effects_high" | "timeout":
            mapping = mapping_of(current)
            if setting == "timeout":
                minutes = int(_one(values))
                if minutes not in {m for m, _ in TIMEOUT_CHOICES}:
                    raise SetupError(f"a time-out of {minutes} minutes is not offered")
                mapping = ActionMapping(mapping.every, mapping.high, minutes, False)
            else:
                kinds = tuple(EffectKind(v) for v in values)
                offered = {k for k, _, _ in EFFECT_CHOICES}
                if not set(kinds) <= offered:
                    raise SetupError(f"not an action the setup offers: {values!r}")
                if setting == "effects_every":
                    mapping = ActionMapping(kinds, mapping.high, mapping.timeout_minutes, False)
                else:
                    mapping = ActionMapping(mapping.every, kinds, mapping.timeout_minutes, False)
            return {"effect_rules": mapping.rules()}
        case "ping_role":
            return {"moderator_ping_role_id": ids[0] if ids else None}
        case "webhooks":
            return {"accept_webhook_messages": _one(values) == "on"}
        case "confirm_notice":
            return {"notify_author_on_confirm": ConfirmNotice(_one(values))}
    raise SetupError(f"no setting named {setting!r} in the setup")


def _one(values: Sequence[str]) -> str:
    if len(values) != 1:
        raise SetupError(f"expected one choice, got {len(values)}")
    return values[0]


# ---------------------------------------------------------------- permissions


def _names(permissions: Sequence[str]) -> str:
    return ", ".join(permissions)


def _channels(channel_ids: Sequence[int]) -> str:
    shown = ", ".join(f"<#{c}>" for c in channel_ids[:_MAX_LISTED])
    more = len(channel_ids) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def permission_problems(guild: discord.Guild, settings: ServerSettings) -> list[str]:
    """What modbot lacks for these settings, exactly: which permission, where, and what fails without it."""
    me = guild.me
    problems: list[str] = []
    kinds = {kind for rule in settings.effect_rules for kind in rule.effects}
    kinds |= {kind for step in settings.strike_ladder.steps if settings.strike_ladder.enabled for kind in step.effects}

    mod_channel_id = settings.mod_channel_id or ""
    mod_channel = guild.get_channel(int(mod_channel_id)) if mod_channel_id.isdigit() else None
    if settings.mod_channel_id is None:
        problems.append("No mod channel is chosen: flags, appeals and warnings have nowhere to go.")
    elif mod_channel is None:
        problems.append(f"The mod channel <#{settings.mod_channel_id}> is gone or hidden from modbot: choose another.")
    else:
        have = mod_channel.permissions_for(me)
        needed = [
            ("View Channel", have.view_channel),
            ("Send Messages", have.send_messages),
            ("Embed Links", have.embed_links),
        ]
        missing = [name for name, ok in needed if not ok]
        if missing:
            problems.append(
                f"Missing in the mod channel <#{mod_channel.id}>: {_names(missing)}. Flags cannot be posted."
            )

    exempt = {int(c) for c in settings.exempt_channel_ids if c.isdigit()}
    channels: list[discord.TextChannel | discord.ForumChannel] = [*guild.text_channels, *guild.forums]
    # The mod channel's needs are listed above. (Exemptions are per channel: the core knows a
    # thread's parent channel, not a channel's category, so a category is not offered.)
    moderated = [c for c in channels if c.id not in exempt and c != mod_channel]
    unseen = [c.id for c in moderated if not c.permissions_for(me).view_channel]
    if unseen:
        problems.append(
            f"modbot cannot see {_channels(unseen)}: messages there are not judged "
            "(fine if you meant it; otherwise give modbot's role View Channel there)."
        )
    if EffectKind.DELETE in kinds:
        cannot = [c.id for c in moderated if c.id not in unseen and not c.permissions_for(me).manage_messages]
        if cannot:
            problems.append(f"Missing Manage Messages in {_channels(cannot)}: messages there cannot be deleted.")
    if EffectKind.TIMEOUT in kinds:
        if not me.guild_permissions.moderate_members:
            problems.append("Missing Moderate Members (server-wide): nobody can be timed out.")
        else:
            above = [r for r in guild.roles if r > me.top_role and not r.managed]
            if above:
                names = ", ".join(f"<@&{r.id}>" for r in above[:_MAX_LISTED])
                problems.append(
                    f"modbot's role is below {names}: members with those roles cannot be timed out "
                    "(drag modbot's role above them in Server Settings > Roles). Administrators never can be."
                )
    if EffectKind.DM_MODERATORS in kinds and not settings.moderator_role_ids:
        problems.append("DM the moderators is chosen but no moderator role is: nobody gets the DM.")
    return problems


# ---------------------------------------------------------------- the pages


def _effects_text(kinds: Sequence[EffectKind]) -> str:
    labels = {kind: label for kind, label, _ in EFFECT_CHOICES}
    return ", ".join(labels[k] for k in kinds) if kinds else "nothing"


def _ids(prefix: str, ids: Sequence[str]) -> str:
    return ", ".join(f"<{prefix}{i}>" for i in ids) if ids else "none"


def summary_embed(settings: ServerSettings, page: str, problems: Sequence[str]) -> discord.Embed:
    mapping = mapping_of(settings)
    title = "modbot setup" + (f": {PAGE_TITLES[page]}" if page in PAGE_TITLES else ", saved")
    embed = new_embed(
        title,
        description=(
            "Each choice is saved as you make it. "
            + ("Shadow mode: modbot judges and records, and acts on nothing." if settings.mode is Mode.SHADOW else "")
        ),
        colour=GOLD if problems else BLURPLE,
    )
    mod_channel = f"<#{settings.mod_channel_id}>" if settings.mod_channel_id else "none"
    fields: list[tuple[str, str, bool]] = [
        ("Mod channel", mod_channel, True),
        ("Moderator roles", _ids("@&", settings.moderator_role_ids), True),
        ("Mode", settings.mode.value, True),
        ("Exempt roles", _ids("@&", settings.exempt_role_ids), True),
        ("Exempt channels", _ids("#", settings.exempt_channel_ids), True),
        ("Every violation", _effects_text(mapping.every), False),
        ("High confidence, also", _effects_text(mapping.high), False),
    ]
    if EffectKind.TIMEOUT in (*mapping.every, *mapping.high):
        fields.append(("Time-out length", f"{mapping.timeout_minutes} min", True))
    ping = f"<@&{settings.moderator_ping_role_id}>" if settings.moderator_ping_role_id else "nobody"
    fields += [
        ("Mentioned on flags and appeals", ping, True),
        ("Webhook messages (PluralKit)", "judged" if settings.accept_webhook_messages else "ignored", True),
    ]
    if mapping.custom:
        fields.append(
            (
                "Rules from the command line",
                "This server has per-policy or medium-confidence rules (set with `modbot settings`); "
                "choosing actions here replaces them with the two rules above.",
                False,
            )
        )
    if not mapping.every and not mapping.high:
        fields.append(("Careful", "No action is chosen: violations are recorded and nobody hears of them.", False))
    fields.append(
        (
            "Permissions",
            "\n".join(f"- {p}" for p in problems) if problems else "modbot has what these settings need.",
            False,
        )
    )
    add_fields(embed, fields)
    return finish(embed, "only you can see this · /modbot setup again at any time")


def _nav(view: discord.ui.View, page: str) -> None:
    index = PAGES.index(page)
    if index > 0:
        back = PAGES[index - 1]
        view.add_item(
            discord.ui.Button(
                label=f"← {PAGE_TITLES[back]}", custom_id=PAGE_PREFIX + back, style=discord.ButtonStyle.secondary, row=4
            )
        )
    if index < len(PAGES) - 1:
        nxt = PAGES[index + 1]
        view.add_item(
            discord.ui.Button(
                label=f"{PAGE_TITLES[nxt]} →", custom_id=PAGE_PREFIX + nxt, style=discord.ButtonStyle.primary, row=4
            )
        )
    else:
        view.add_item(
            discord.ui.Button(label="Done", custom_id=PAGE_PREFIX + Page.DONE, style=discord.ButtonStyle.success, row=4)
        )


def _objects(ids: Sequence[str]) -> list[discord.Object]:
    return [discord.Object(int(i)) for i in ids if i.isdigit()][:25]


def setup_view(settings: ServerSettings, page: str) -> discord.ui.View:
    """The page's selects, showing the saved settings; stopped, so that only `on_interaction` answers them."""
    view = discord.ui.View(timeout=None)
    text_channels = [discord.ChannelType.text, discord.ChannelType.news]
    if page == Page.WHERE:
        view.add_item(
            discord.ui.ChannelSelect(
                custom_id=SETUP_PREFIX + "mod_channel",
                channel_types=text_channels,
                placeholder="Mod channel: where flags and appeals go",
                min_values=0,
                max_values=1,
                default_values=_objects([settings.mod_channel_id] if settings.mod_channel_id else []),
                row=0,
            )
        )
        view.add_item(
            discord.ui.RoleSelect(
                custom_id=SETUP_PREFIX + "moderator_roles",
                placeholder="Moderator roles: who reviews cases and appeals",
                min_values=0,
                max_values=25,
                default_values=_objects(settings.moderator_role_ids),
                row=1,
            )
        )
        view.add_item(
            discord.ui.RoleSelect(
                custom_id=SETUP_PREFIX + "exempt_roles",
                placeholder="Exempt roles: their messages are not judged",
                min_values=0,
                max_values=25,
                default_values=_objects(settings.exempt_role_ids),
                row=2,
            )
        )
        view.add_item(
            discord.ui.ChannelSelect(
                custom_id=SETUP_PREFIX + "exempt_channels",
                channel_types=[*text_channels, discord.ChannelType.forum],
                placeholder="Exempt channels: not judged (threads included)",
                min_values=0,
                max_values=25,
                default_values=_objects(settings.exempt_channel_ids),
                row=3,
            )
        )
    elif page == Page.ACTIONS:
        mapping = mapping_of(settings)
        view.add_item(
            _string_select(
                "mode",
                "Mode",
                [
                    ("enforce", "Enforce: carry out the actions below", "", settings.mode is Mode.ENFORCE),
                    ("shadow", "Shadow: judge and record, act on nothing", "", settings.mode is Mode.SHADOW),
                ],
                row=0,
            )
        )
        view.add_item(_effects_select("effects_every", "Every violation: …", mapping.every, row=1))
        view.add_item(_effects_select("effects_high", "High-confidence violations, also: …", mapping.high, row=2))
        view.add_item(
            _string_select(
                "timeout",
                "Time-out length",
                [(str(m), label, "", m == mapping.timeout_minutes) for m, label in TIMEOUT_CHOICES],
                row=3,
            )
        )
    elif page == Page.OPTIONS:
        view.add_item(
            discord.ui.RoleSelect(
                custom_id=SETUP_PREFIX + "ping_role",
                placeholder="Role to mention on flags and appeals (none: nobody)",
                min_values=0,
                max_values=1,
                default_values=_objects([settings.moderator_ping_role_id] if settings.moderator_ping_role_id else []),
                row=0,
            )
        )
        view.add_item(
            _string_select(
                "webhooks",
                "Webhook messages",
                [
                    (
                        "off",
                        "Ignore webhook messages",
                        "Bots and integrations post through webhooks",
                        not settings.accept_webhook_messages,
                    ),
                    (
                        "on",
                        "Judge webhook messages",
                        "For PluralKit and similar proxies of members",
                        settings.accept_webhook_messages,
                    ),
                ],
                row=1,
            )
        )
        view.add_item(
            _string_select(
                "confirm_notice",
                "Tell the author of a confirmation",
                [
                    (choice.value, label, description, settings.notify_author_on_confirm is choice)
                    for choice, label, description in CONFIRM_NOTICE_CHOICES
                ],
                row=2,
            )
        )
    if page in PAGES:
        _nav(view, page)
    view.stop()
    return view


def _string_select(
    setting: str, placeholder: str, options: Sequence[tuple[str, str, str, bool]], *, row: int
) -> discord.ui.Select[Any]:
    return discord.ui.Select(
        custom_id=SETUP_PREFIX + setting,
        placeholder=placeholder,
        min_values=1,
        max_values=1,
        options=[
            discord.SelectOption(label=label, value=value, description=description or None, default=chosen)
            for value, label, description, chosen in options
        ],
        row=row,
    )


def _effects_select(
    setting: str, placeholder: str, chosen: Sequence[EffectKind], *, row: int
) -> discord.ui.Select[Any]:
    return discord.ui.Select(
        custom_id=SETUP_PREFIX + setting,
        placeholder=placeholder,
        min_values=0,
        max_values=len(EFFECT_CHOICES),
        options=[
            discord.SelectOption(label=label, value=kind.value, description=description, default=kind in chosen)
            for kind, label, description in EFFECT_CHOICES
        ],
        row=row,
    )


def selected_values(data: Mapping[str, Any]) -> list[str]:
    values = data.get("values")
    return [str(v) for v in values] if isinstance(values, list) else []
