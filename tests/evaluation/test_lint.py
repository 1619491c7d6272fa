"""`modbot policy lint`: good and broken policies against expected-output files; the shipped library."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.evaluation import lint_policy_files
from bot.policy_format import Severity
from tests.conftest import POLICY_DIR
from tests.evaluation._cli import LINT, invoke

# Regenerate the .expected files after an intended change of wording:
#   UPDATE_GOLDEN=1 python -m pytest tests/evaluation/test_lint.py
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize(
    ("name", "exit_code"),
    [("good", 0), ("vague", 0), ("broken-sections", 1), ("bad-front-matter", 1), ("bad-cases", 1)],
)
def test_lint_output_matches_expected(name: str, exit_code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative paths, so the messages read as a user in that folder sees them.
    monkeypatch.chdir(LINT)
    result = invoke("policy", "lint", f"{name}.md")
    expected = LINT / f"{name}.expected"
    if UPDATE:
        expected.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == expected.read_text(encoding="utf-8")
    assert result.exit_code == exit_code


def test_lint_several_files_and_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = invoke("policy", "lint", "good.md", "vague.md")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "2 files: 0 errors, 8 warnings"
    folder = invoke("policy", "lint", ".")
    assert folder.exit_code == 1
    assert folder.stdout.splitlines()[-1].startswith("5 files: ")


def test_lint_without_cases_skips_the_cases_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = invoke("policy", "lint", "--no-cases", "bad-cases.md")
    assert result.exit_code == 0
    assert "cases/" not in result.stdout


def test_a_policy_over_the_hard_limit_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (LINT / "good.md").read_text(encoding="utf-8").replace("name: good", "name: huge")
    filler = "- **Filler**: " + "word " * 10_500 + "\n"
    huge = tmp_path / "huge.md"
    huge.write_text(text.replace("## VIOLATES (1)", filler + "\n## VIOLATES (1)"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = invoke("policy", "lint", "--no-cases", "huge.md")
    assert result.exit_code == 1
    assert "huge.md:7: error: policy is about 10" in result.stdout
    assert "the limit is 10000" in result.stdout


def test_two_files_with_one_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    for folder in ("one", "two"):
        (tmp_path / folder / "good.md").write_text((LINT / "good.md").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = invoke("policy", "lint", "--no-cases", "one/good.md", "two/good.md")
    assert result.exit_code == 1
    assert "two/good.md:2: error: name 'good' is already used by one/good.md" in result.stdout


def test_missing_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("policy", "lint", "nope.md")
    assert result.exit_code == 1
    assert "nope.md:0: error: cannot read the policy: no such file" in result.stdout


SHIPPED = sorted(POLICY_DIR.glob("*.md"))


def test_the_library_is_not_empty() -> None:
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize("policy", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_policy_passes_lint(policy: Path) -> None:
    report = lint_policy_files([policy])
    errors = [str(p) for f in report.files for p in f.problems if p.severity is Severity.ERROR]
    assert not errors, "\n".join(errors)
    assert report.files[0].document is not None
    assert report.files[0].document.tokens <= 10_000
