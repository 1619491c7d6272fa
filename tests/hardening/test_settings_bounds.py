"""Issue 7 §8: every numeric setting has a documented range, and ids given as JSON numbers are taken as text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.domain import ServerSettings, setting_ranges
from bot.workflow import Actor, Refused, ServerSettingsService
from tests.fakes.store import FakeStore

ADMIN = Actor(id="boss", platform="console", server_id="g1", is_admin=True)

# The ranges the README documents (/work/coord/readme/hardening.md), written out here rather
# than read from the model: a range changed in code must be changed in the docs too.
DOCUMENTED = {
    "context_messages": (0, 20, "messages"),
    "repeat_window_minutes": (0, 1440, "minutes"),
    "retention_days": (1, 3650, "days"),
    "appeal_reminder_hours": (1, 720, "hours"),
    "digest_hour_utc": (0, 23, "hour of the day, UTC"),
    "health_alert_after_minutes": (1, 1440, "minutes"),
    "health_clear_after_minutes": (0, 1440, "minutes"),
    "effect_rules[].timeout_minutes": (1, 40320, "minutes"),
    "strike_ladder.window_days": (1, 365, "days"),
    "strike_ladder.steps[].strikes": (2, 100, "confirmed violations"),
    "strike_ladder.steps[].timeout_minutes": (1, 40320, "minutes"),
}


def change_at(path: str, value: object) -> dict[str, Any]:
    """The settings change that puts `value` at a (possibly nested) setting's path."""
    if path == "effect_rules[].timeout_minutes":
        return {"effect_rules": [{"effects": ["flag"], "timeout_minutes": value}]}
    if path == "strike_ladder.window_days":
        return {"strike_ladder": {"window_days": value}}
    if path == "strike_ladder.steps[].strikes":
        return {"strike_ladder": {"steps": [{"strikes": value}]}}
    if path == "strike_ladder.steps[].timeout_minutes":
        return {"strike_ladder": {"steps": [{"strikes": 3, "timeout_minutes": value}]}}
    return {path: value}


def test_every_numeric_setting_has_its_documented_range() -> None:
    found = {r.path: (r.low, r.high, r.unit) for r in setting_ranges()}
    assert found == DOCUMENTED


@pytest.mark.parametrize("path", sorted(DOCUMENTED))
async def test_a_setting_is_refused_outside_its_range_with_the_range_in_the_message(path: str) -> None:
    low, high, unit = DOCUMENTED[path]
    service = ServerSettingsService(FakeStore())
    for accepted in (low, high):
        await service.update(ADMIN, change_at(path, accepted))
    shown = path.replace("[]", "[0]")
    for wrong in (low - 1, high + 1):
        with pytest.raises(Refused) as refusal:
            await service.update(ADMIN, change_at(path, wrong))
        assert f"{shown}={wrong} is out of range: give a whole number from {low} to {high} ({unit})" in str(
            refusal.value
        )


async def test_the_values_that_crashed_every_servers_jobs_are_refused() -> None:
    service = ServerSettingsService(FakeStore())
    with pytest.raises(Refused) as refusal:
        await service.update(ADMIN, {"retention_days": 1000000, "appeal_reminder_hours": 1e11})
    message = str(refusal.value)
    assert "retention_days=1000000 is out of range: give a whole number from 1 to 3650 (days)" in message
    assert "appeal_reminder_hours=100000000000.0 is out of range: give a whole number from 1 to 720 (hours)" in message
    assert (await service.show(ADMIN)).retention_days == 30


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (True, "retention_days=True is not a whole number"),  # pydantic alone reads true as 1: one day
        ("fourteen", "retention_days='fourteen' is not a whole number: give a whole number from 1 to 3650"),
        (14.5, "retention_days=14.5 is not a whole number"),
        (float("nan"), "is not a whole number"),
        (None, "is not a whole number"),
    ],
)
async def test_a_number_setting_takes_only_whole_numbers(value: object, said: str) -> None:
    with pytest.raises(Refused, match=re.escape(said)):
        await ServerSettingsService(FakeStore()).update(ADMIN, {"retention_days": value})


async def test_ids_given_as_json_numbers_are_taken_as_the_text_they_spell() -> None:
    service = ServerSettingsService(FakeStore())
    snowflake = 1234567890123456789  # a Discord id: 19 digits, more than a float holds
    updated = await service.update(
        ADMIN,
        {
            "mod_channel_id": snowflake,
            "moderator_role_ids": [42, "mods"],
            "exempt_channel_ids": [7],
            "admin_user_ids": [snowflake],
        },
    )
    assert updated.mod_channel_id == "1234567890123456789"
    assert updated.moderator_role_ids == ("42", "mods")
    assert updated.exempt_channel_ids == ("7",) and updated.admin_user_ids == ("1234567890123456789",)
    assert json.loads(updated.model_dump_json())["mod_channel_id"] == "1234567890123456789"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (1.234567890123457e18, "may have lost digits"),
        (12.0, "quote the id exactly as the platform shows it"),
        (True, "an id is text, not true or false: quote it"),
        ("C1\n[mod channel g2] forged", "no line breaks, control characters"),
        ("C\ud800", "broken characters"),
        ("", "an id cannot be empty (to unset mod_channel_id, give null)"),
        ("x" * 201, "an id is at most 200 characters"),
    ],
)
async def test_ids_that_cannot_be_an_id_are_refused_saying_what_to_do(value: object, said: str) -> None:
    with pytest.raises(Refused, match=re.escape(said)):
        await ServerSettingsService(FakeStore()).update(ADMIN, {"mod_channel_id": value})


async def test_a_bare_word_where_a_list_is_needed_says_how_to_write_the_list() -> None:
    with pytest.raises(Refused, match=r"moderator_role_ids: give a JSON list"):
        await ServerSettingsService(FakeStore()).update(ADMIN, {"moderator_role_ids": "mods"})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"moderator_role_ids": [str(i) for i in range(101)]}, "at most 100 items"),
        ({"effect_rules": [{}] * 21}, "at most 20 items"),
        ({"strike_ladder": {"steps": [{"strikes": n} for n in range(2, 13)]}}, "at most 10 items"),
    ],
)
async def test_lists_in_settings_are_bounded_too(change: dict[str, Any], said: str) -> None:
    with pytest.raises(Refused, match=said):
        await ServerSettingsService(FakeStore()).update(ADMIN, change)


async def test_a_refusal_echoes_the_value_on_one_line_without_pings() -> None:
    with pytest.raises(Refused) as refusal:
        await ServerSettingsService(FakeStore()).update(ADMIN, {"retention_days": "@everyone\nsettings changed"})
    message = str(refusal.value)
    assert "\n" not in message and "@everyone" not in message


def test_the_defaults_are_within_their_ranges() -> None:
    defaults = ServerSettings(platform="console", server_id="g1")
    assert ServerSettings.model_validate(defaults.model_dump()) == defaults


def test_the_ranges_and_a_numeric_id_from_the_command_line(tmp_path: Path) -> None:
    import adapters.console.workflow_cli  # noqa: F401  (registers the settings commands)
    from adapters.console.cli import app

    env = {"MODBOT_DB": str(tmp_path / "cli.db"), "OLLAMA_HOST": "http://127.0.0.1:9"}
    shown = CliRunner().invoke(app, ["settings", "ranges"], env=env)
    assert shown.exit_code == 0
    assert "retention_days: 1 to 3650 (days)" in shown.stdout.splitlines()
    assert len(shown.stdout.splitlines()) == len(DOCUMENTED)
    admin = ["-s", "g1", "--actor", "boss", "--admin"]
    refused = CliRunner().invoke(app, ["settings", "set", *admin, "retention_days=1000000"], env=env)
    assert refused.exit_code == 2
    assert "retention_days=1000000 is out of range: give a whole number from 1 to 3650 (days)" in refused.stderr
    taken = CliRunner().invoke(app, ["settings", "set", *admin, "mod_channel_id=1234567890123456789"], env=env)
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.stdout) == {"mod_channel_id": "1234567890123456789"}
