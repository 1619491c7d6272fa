"""Policy lifecycle: set, validation, show, list, history, diff, rollback, switches, templates."""

from __future__ import annotations

import json

import pytest

from bot.domain import Mode
from bot.policy_format import TOKENS_MAX
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor, NotAuthorised, NotFound, PolicyAdmin, PolicyRejected, Refused, templates
from tests.workflow.conftest import ADMIN, DATA, MEMBER, MOD, SERVER, acting, configure, policy_text, snapshot
from tests.workflow.fakes import FakeClock


def edited(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


async def test_set_creates_versions_and_audits_each_change(wstore: SqliteStore, clock: FakeClock) -> None:
    admin = PolicyAdmin(wstore)
    first = await admin.set(ADMIN, policy_text())
    assert (first.changed, first.previous_version, first.policy.version) == (True, None, 1)
    # The stored text is the body the model reads: no front matter.
    assert not first.policy.text.startswith("---")
    assert first.policy.text.startswith("# Harassment")
    clock.advance(minutes=5)
    second = await admin.set(ADMIN, edited(policy_text(), "Insulting a target", "Insulting or belittling a target"))
    assert (second.changed, second.previous_version, second.policy.version) == (True, 1, 2)
    log = await wstore.audit.for_server("console", SERVER)
    assert [(e.actor, e.action, e.before, e.after) for e in log] == [
        ("admin-1", "policy.set", None, "v1"),
        ("admin-1", "policy.set", "v1", "v2"),
    ]
    assert log[1].at == clock.now


async def test_setting_the_same_text_again_adds_no_version(wstore: SqliteStore) -> None:
    admin = PolicyAdmin(wstore)
    await admin.set(ADMIN, policy_text())
    before = await snapshot(wstore)
    again = await admin.set(ADMIN, policy_text())
    assert (again.changed, again.policy.version) == (False, 1)
    assert await snapshot(wstore) == before


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("## SAFE (0)", "## SAVE (0)"), "unknown section 'SAVE'"),
        (("- HB1.b: Telling", "- HB1.a: Telling"), "rule id HB1.a is already defined at line"),
        (("## DEFINITIONS", "## NOTES"), "missing section '## DEFINITIONS'"),
    ],
)
async def test_a_refused_set_names_the_line_and_changes_nothing(
    wstore: SqliteStore, change: tuple[str, str], expected: str
) -> None:
    await configure(wstore)
    before = await snapshot(wstore)
    with pytest.raises(PolicyRejected) as refused:
        await PolicyAdmin(wstore).set(MOD, edited(policy_text(), *change), source="harassment-v2.md")
    assert expected in str(refused.value)
    assert "harassment-v2.md:" in str(refused.value)  # file:line
    assert await snapshot(wstore) == before


async def test_a_duplicate_rule_id_error_names_its_line(wstore: SqliteStore) -> None:
    text = edited(policy_text(), "- HB1.b: Telling", "- HB1.a: Telling")
    line = next(i for i, ln in enumerate(text.splitlines(), start=1) if ln.startswith("- HB1.a: Telling"))
    with pytest.raises(PolicyRejected) as refused:
        await PolicyAdmin(wstore).set(ADMIN, text, source="p.md")
    assert any(p.line == line and "already defined" in p.message for p in refused.value.problems)


async def test_token_limits_warn_above_600_and_refuse_above_10000(wstore: SqliteStore) -> None:
    admin = PolicyAdmin(wstore)
    padding = "\n".join(f"- **Term{i}**: a word defined for the members of this server." for i in range(40))
    longer = edited(policy_text(), "## VIOLATES (1)", padding + "\n\n## VIOLATES (1)")
    accepted = await admin.set(ADMIN, longer)
    assert accepted.changed
    assert any("tokens; 400-600 works best" in w for w in accepted.warnings)

    huge_padding = "\n".join(f"- **Term{i}**: a word defined for the members of this server." for i in range(900))
    huge = edited(policy_text(), "## VIOLATES (1)", huge_padding + "\n\n## VIOLATES (1)")
    before = await snapshot(wstore)
    with pytest.raises(PolicyRejected) as refused:
        await admin.set(ADMIN, huge)
    assert f"the limit is {TOKENS_MAX}" in str(refused.value)
    assert await snapshot(wstore) == before


async def test_the_front_matter_name_must_match_the_name_given(wstore: SqliteStore) -> None:
    with pytest.raises(PolicyRejected) as refused:
        await PolicyAdmin(wstore).set(ADMIN, policy_text(), name="bullying")
    assert "'harassment' but it is being saved as 'bullying'" in str(refused.value)
    assert await wstore.policies.live("console", SERVER) == []


async def test_only_moderators_and_admins_may_change_policies(wstore: SqliteStore) -> None:
    await configure(wstore)
    admin = PolicyAdmin(wstore)
    text = edited(policy_text(), "Insulting a target", "Insulting or belittling a target")
    before = await snapshot(wstore)
    for call in (
        admin.set(MEMBER, text),
        admin.rollback(MEMBER, "harassment", 1),
        admin.disable(MEMBER, "harassment"),
        admin.set_mode(MEMBER, "harassment", Mode.SHADOW),
        admin.install_templates(MEMBER, ["spam-scams"], DATA),
    ):
        with pytest.raises(NotAuthorised) as refused:
            await call
        assert "member-9 may not" in str(refused.value)
        assert "moderator roles (mods)" in str(refused.value)
    assert await snapshot(wstore) == before
    # A moderator (by role) may; so may a listed admin user without roles.
    assert (await admin.set(MOD, text)).policy.version == 2


async def test_an_unconfigured_server_accepts_only_admins(wstore: SqliteStore) -> None:
    with pytest.raises(NotAuthorised):
        await PolicyAdmin(wstore).set(acting(MOD, "new-server"), policy_text())
    assert (await PolicyAdmin(wstore).set(acting(ADMIN, "new-server"), policy_text())).changed


async def test_admin_user_ids_make_a_user_admin(wstore: SqliteStore) -> None:
    await configure(wstore, admin_user_ids=("owner-7",))
    result = await PolicyAdmin(wstore).disable(Actor(id="owner-7", platform="console", server_id=SERVER), "harassment")
    assert result.enabled is False


async def test_show_list_history_and_diff(wstore: SqliteStore, clock: FakeClock) -> None:
    admin = PolicyAdmin(wstore)
    await configure(wstore)
    clock.advance(hours=1)
    await admin.set(MOD, edited(policy_text(), "Insulting a target", "Belittling a target"))
    assert (await admin.show(MOD, "harassment")).version == 2
    assert "Insulting a target" in (await admin.show(MOD, "harassment", 1)).text
    states = await admin.list_policies(MOD)
    assert [(s.policy.name, s.policy.version, s.enabled, s.mode, s.versions) for s in states] == [
        ("harassment", 2, True, None, 2)
    ]
    history = await admin.history(MOD, "harassment")
    assert [p.version for p in history.versions] == [1, 2]
    assert [(c.action, c.before, c.after) for c in history.changes] == [
        ("policy.set", None, "v1"),
        ("policy.set", "v1", "v2"),
    ]
    diff = await admin.diff(MOD, "harassment", 1, 2)
    assert "--- harassment v1" in diff and "+++ harassment v2" in diff
    assert "-- HB1.a: Insulting a target" in diff and "+- HB1.a: Belittling a target" in diff
    with pytest.raises(NotFound, match="harassment has no version 7; versions are 1 to 2"):
        await admin.diff(MOD, "harassment", 1, 7)
    with pytest.raises(NotFound, match="no policy named 'spam'; it has: harassment"):
        await admin.show(MOD, "spam")


async def test_rollback_is_a_new_version_with_the_old_text(wstore: SqliteStore) -> None:
    admin = PolicyAdmin(wstore)
    v1 = (await admin.set(ADMIN, policy_text())).policy
    await admin.set(ADMIN, edited(policy_text(), "Insulting a target", "Belittling a target"))
    v3 = await admin.rollback(ADMIN, "harassment", 1)
    assert (v3.version, v3.text) == (3, v1.text)
    assert [p.version for p in await wstore.policies.versions("console", SERVER, "harassment")] == [1, 2, 3]
    last = (await wstore.audit.for_server("console", SERVER))[-1]
    assert (last.action, last.before, last.after) == ("policy.rollback_to_v1", "v2", "v3")
    before = await snapshot(wstore)
    with pytest.raises(Refused, match="already the text of v1"):
        await admin.rollback(ADMIN, "harassment", 1)
    with pytest.raises(NotFound):
        await admin.rollback(ADMIN, "harassment", 9)
    assert await snapshot(wstore) == before


async def test_enable_disable_and_mode_are_audited(wstore: SqliteStore) -> None:
    await configure(wstore)
    admin = PolicyAdmin(wstore)
    assert (await admin.disable(MOD, "harassment")).enabled is False
    assert (await admin.set_mode(MOD, "harassment", Mode.SHADOW)).mode is Mode.SHADOW
    assert (await admin.enable(MOD, "harassment")).enabled is True
    assert (await admin.set_mode(MOD, "harassment", None)).mode is None
    switches = [e for e in await wstore.audit.for_server("console", SERVER) if e.action == "policy.switch"]
    assert [(json.loads(e.before or ""), json.loads(e.after or "")) for e in switches] == [
        ({"enabled": True, "mode": None}, {"enabled": False, "mode": None}),
        ({"enabled": False, "mode": None}, {"enabled": False, "mode": "shadow"}),
        ({"enabled": False, "mode": "shadow"}, {"enabled": True, "mode": "shadow"}),
        ({"enabled": True, "mode": "shadow"}, {"enabled": True, "mode": None}),
    ]
    assert all(e.actor == "mod-1" for e in switches)
    # Asking for the state it is already in changes and audits nothing.
    before = await snapshot(wstore)
    await admin.enable(MOD, "harassment")
    assert await snapshot(wstore) == before
    with pytest.raises(NotFound):
        await admin.disable(MOD, "nope")


async def test_a_new_server_starts_from_the_templates_its_admin_picks(wstore: SqliteStore) -> None:
    offered = {t.name for t in templates(DATA)}
    assert offered == {"harassment", "spam-scams"}
    installed = await PolicyAdmin(wstore).install_templates(acting(ADMIN, "fresh"), ["spam-scams", "harassment"], DATA)
    assert sorted(p.name for p in installed) == ["harassment", "spam-scams"]
    assert sorted(lp.policy.name for lp in await wstore.policies.live("console", "fresh")) == [
        "harassment",
        "spam-scams",
    ]
    assert [e.actor for e in await wstore.audit.for_server("console", "fresh")] == ["admin-1", "admin-1"]
    before = await snapshot(wstore)
    with pytest.raises(NotFound, match="no template named nonsense"):
        await PolicyAdmin(wstore).install_templates(acting(ADMIN, "fresh"), ["harassment", "nonsense"], DATA)
    assert await snapshot(wstore) == before
