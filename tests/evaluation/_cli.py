"""Running the real `modbot` CLI from async tests: in a thread, so the fake Ollama keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner, Result

import adapters.console.policy_eng_cli  # noqa: F401  (registers policy lint/test, eval, report)
from adapters.console.cli import app

DATA = Path(__file__).resolve().parent / "data"
LINT = DATA / "lint"
OPENAI_SAMPLE = DATA / "openai-moderation-sample.jsonl.gz"


def invoke(*args: object, host: str | None = None) -> Result:
    env = {"OLLAMA_HOST": host} if host else {}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


async def run_cli(*args: object, host: str | None = None) -> Result:
    """The command's asyncio.run needs its own loop: the test's loop is serving the fake."""
    return await asyncio.to_thread(invoke, *args, host=host)
