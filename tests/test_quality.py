"""The project's own gates, run by the same command as the tests: ruff, mypy, import contracts."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = ("discord", "slack_bolt", "slack_sdk")


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def test_ruff_lint() -> None:
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run(tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = run(tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_imports_no_platform_and_no_adapter() -> None:
    result = run(tool("lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_platform_adapters_do_not_import_each_other() -> None:
    adapters = [p for p in (REPO / "adapters").iterdir() if (p / "__init__.py").exists()]
    assert adapters, "no adapters found"
    for adapter in adapters:
        others = {f"adapters.{a.name}" for a in adapters if a != adapter}
        for source in adapter.rglob("*.py"):
            crossing = {m for m in imported_modules(source) if ".".join(m.split(".")[:2]) in others}
            assert not crossing, f"{source.relative_to(REPO)} imports {sorted(crossing)}"


def test_the_contract_check_itself_would_catch_a_platform_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import discord\nfrom slack_sdk import WebClient\n", encoding="utf-8")
    assert {"discord", "slack_sdk"} <= imported_modules(bad)
