"""Slack settings from the environment, the connection mode, capabilities, and the app manifest."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from adapters.slack import render
from adapters.slack.config import (
    DELETE_NEEDS_ADMIN_TOKEN,
    ConnectionMode,
    SlackConfigError,
    capabilities,
    load_settings,
)
from bot.domain import EffectKind

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "adapters" / "slack" / "manifest.yml"


def test_socket_mode_is_the_default_and_http_needs_only_the_signing_secret() -> None:
    both = load_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", SLACK_SIGNING_SECRET="s")
    assert both.mode is ConnectionMode.SOCKET
    http = load_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    assert (http.mode, http.port, http.api_url) == (ConnectionMode.HTTP, 3000, "https://slack.com/api/")
    with pytest.raises(SlackConfigError, match=r"SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET"):
        _ = load_settings(SLACK_BOT_TOKEN="xoxb-1").mode


def test_tokens_come_from_files_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bot").write_text("xoxb-from-a-file\n", encoding="utf-8")
    (tmp_path / "app").write_text("xapp-from-a-file", encoding="utf-8")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "bot"))
    monkeypatch.setenv("SLACK_APP_TOKEN_FILE", str(tmp_path / "app"))
    monkeypatch.setenv("MODBOT_SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("MODBOT_SLACK_PORT", "3999")
    settings = load_settings()
    assert settings.secret("SLACK_BOT_TOKEN") == "xoxb-from-a-file"
    assert settings.secret("SLACK_APP_TOKEN") == "xapp-from-a-file"
    assert (settings.api_url, settings.port) == ("http://127.0.0.1:9/api/", 3999)
    assert "xoxb-from-a-file" not in repr(settings)  # secrets stay out of logs and tracebacks


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_BOT_TOKEN": "xapp-swapped"}, "SLACK_BOT_TOKEN must start with xoxb-"),
        ({"SLACK_APP_TOKEN": "xoxb-swapped"}, "SLACK_APP_TOKEN must start with xapp-.*App-Level Tokens"),
        ({"SLACK_ADMIN_USER_TOKEN": "xoxb-bot"}, "SLACK_ADMIN_USER_TOKEN must start with xoxp-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_BOT_TOKEN_FILE": "/x"}, "both SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE"),
        ({"SLACK_SIGNING_SECRET_FILE": "/no/such/file"}, "SLACK_SIGNING_SECRET_FILE=/no/such/file: cannot read"),
        ({"MODBOT_SLACK_PORT": "99999"}, "65535"),
    ],
)
def test_wrong_settings_say_which_variable_and_what_to_do(env: dict[str, str], message: str) -> None:
    with pytest.raises(SlackConfigError, match=message):
        load_settings(**env)


def test_without_a_bot_token_slack_is_not_configured() -> None:
    settings = load_settings()
    assert not settings.configured
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN is not set"):
        settings.check()


def test_capabilities_never_timeouts_and_delete_only_with_an_admin_token() -> None:
    plain = capabilities(load_settings(SLACK_BOT_TOKEN="xoxb-1"))
    assert {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT, EffectKind.DELETE}.isdisjoint(plain.supported)
    assert plain.refusal(EffectKind.DELETE) == DELETE_NEEDS_ADMIN_TOKEN
    assert "SLACK_ADMIN_USER_TOKEN" in DELETE_NEEDS_ADMIN_TOKEN
    assert "Slack has no timeouts" in (plain.refusal(EffectKind.TIMEOUT) or "")
    admin = capabilities(load_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_ADMIN_USER_TOKEN="xoxp-1"))
    assert admin.supported == frozenset(EffectKind) - {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT}
    assert admin.refusal(EffectKind.DELETE) is None


def test_the_capabilities_module_imports_no_slack_library() -> None:
    tree = ast.parse((REPO / "adapters" / "slack" / "config.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.split(".")[0] in ("slack_bolt", "slack_sdk", "aiohttp")}


# Every Web API method the adapter calls, and the bot scope it needs (docs.slack.dev/reference/methods).
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_getPermalink": None,  # no scope needed
    "conversations_open": "im:write",
    "users_info": "users:read",
    "usergroups_users_list": "usergroups:read",
    "usergroups_list": "usergroups:read",
    "chat_postEphemeral": "chat:write",
    "views_open": None,
    "auth_test": None,
}
# What a Web API method looks like on slack_sdk's client: any such call must be listed above.
WEB_API_METHOD = re.compile(r"^(apps|auth|chat|conversations|files|reactions|usergroups|users|views)_[A-Za-z_]+$")


def test_the_manifest_grants_every_scope_the_adapter_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    bot_scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    used: set[str] = set()
    for source in (REPO / "adapters" / "slack").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and WEB_API_METHOD.match(node.attr):
                used.add(node.attr)
    assert used - {"chat_delete"} <= set(SCOPE_OF_METHOD), used
    assert {SCOPE_OF_METHOD[m] for m in used if SCOPE_OF_METHOD.get(m)} <= bot_scopes
    # Delete runs with the admin's user token, which needs chat:write as a user scope.
    assert "chat_delete" in used and manifest["oauth_config"]["scopes"]["user"] == ["chat:write"]
    # Message events in public and private channels, and the history scopes they need.
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {"message.channels", "message.groups"}
    assert {"channels:history", "groups:history", "commands"} <= bot_scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/policy", "/modbot"}
    assert manifest["features"]["shortcuts"][0]["callback_id"] == "modbot_report"
    assert len(manifest["display_information"]["name"]) <= 35
    assert render.ACTION_PREFIX == "modbot"
