"""The `modbot` command: classify, replay, export, status; `main` gathers the command modules.

Each command imports what it needs when it runs, so that `modbot --help` and `modbot check`
stay quick to start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.console.options import DbOption, EffortChoice, JsonOption, app, fail, load_settings, quick_retry, with_app

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.domain import Case, Effort
    from bot.policy_format import PolicyDocument
    from bot.settings import ModbotSettings

__all__ = ["app", "main"]

PolicyOption = Annotated[
    list[Path] | None,
    typer.Option("--policy", "-p", help="Policy file (repeatable). Default: every file in policies/."),
]


def policy_documents(settings: ModbotSettings, files: list[Path] | None) -> list[PolicyDocument]:
    from bot.policy_format import PolicyFormatError
    from bot.policy_library import library_files, load_policies

    paths = files or library_files(settings.policy_dir)
    if not paths:
        raise fail(f"no policy files: none given with --policy and none in {settings.policy_dir}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise fail(f"policy file not found: {', '.join(missing)}")
    try:
        return load_policies(paths)
    except PolicyFormatError as exc:
        raise fail(f"malformed policy:\n{exc}") from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc


# ---------------------------------------------------------------- check


@app.command()
def check(
    text: Annotated[str, typer.Argument(help="The message to classify.")],
    policy: PolicyOption = None,
    effort: Annotated[EffortChoice, typer.Option(help="Reasoning effort.")] = EffortChoice.LOW,
    as_json: JsonOption = False,
) -> None:
    """Classify one text against policies and print each policy's verdict."""
    from bot.domain import Effort

    settings = load_settings()
    docs = policy_documents(settings, policy)
    code = asyncio.run(_check(settings, docs, text, Effort(effort.value), as_json))
    raise typer.Exit(code)


async def _check(settings: ModbotSettings, docs: list[PolicyDocument], text: str, effort: Effort, as_json: bool) -> int:
    from adapters.console.render import verdict_line
    from bot.bootstrap import build_classifier
    from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
    from bot.domain import Author, Message
    from bot.policy_library import as_policy

    # One command, one answer: the operator gets a single line if the model can't be had,
    # not a warning per retry.
    logging.getLogger("bot.classifier").setLevel(logging.ERROR)
    classifier = build_classifier(settings, quick_retry())
    message = Message(
        platform="console",
        server_id="cli",
        channel_id="cli",
        message_id="cli",
        author=Author(id="cli", name="cli"),
        text=text,
    )
    try:
        verdicts = await asyncio.gather(
            *(classifier.classify(ClassificationRequest(as_policy(d, "cli"), message, effort)) for d in docs)
        )
    except (ModelUnavailable, ModelRequestRejected) as exc:
        typer.echo(f"modbot: {exc}", err=True)
        return 2
    finally:
        await classifier.aclose()
    for v in verdicts:
        if as_json:
            typer.echo(json.dumps(v.summary(), ensure_ascii=False))
        else:
            typer.echo(verdict_line(v))
    return 0


# ---------------------------------------------------------------- replay


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSON lines: id, server, channel, author, text, ...")],
    db: DbOption = None,
    policy: PolicyOption = None,
    as_json: JsonOption = False,
    quiet_effects: Annotated[bool, typer.Option("--quiet-effects", help="Do not print effects.")] = False,
) -> None:
    """Run a file of messages through the whole pipeline; effects are printed, not executed.

    A file with a bad line is refused whole, every bad line named. A line with an id seen
    before and other text (or "edited": true) is an edit: only each message's latest
    revision is judged. Killed and run again, it decides only what the first run did not.
    """
    settings = load_settings(db)
    errors, count = _check_replay_file(file)
    if errors:
        # Nothing is submitted from a file with bad lines: fix them and run again.
        raise fail(
            "bad input, nothing was replayed:\n  "
            + "\n  ".join(errors[:50])
            + (f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else "")
        )
    docs = policy_documents(settings, policy)
    from bot.store.ports import RunnerLockHeld

    try:
        asyncio.run(
            _replay(
                settings,
                docs,
                file,
                count,
                as_json,
                explicit_policies=policy is not None,
                print_effects=not quiet_effects,
            )
        )
    except RunnerLockHeld as exc:
        raise fail(str(exc)) from exc


def _replay_lines(file: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line; text None for a line that is not UTF-8 or is too long.

    Read a line at a time: a file of any length is checked and replayed in bounded memory.
    """
    from adapters.console.mapping import MAX_LINE_BYTES

    with file.open("rb") as lines:
        for lineno, raw in enumerate(lines, start=1):
            if len(raw) > MAX_LINE_BYTES:
                yield lineno, None
                continue
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield lineno, None


def _check_replay_file(file: Path) -> tuple[list[str], int]:
    """Every bad line of the file, named, and how many messages it holds."""
    from adapters.console.mapping import MAX_LINE_BYTES, ReplayLineError, parse_replay_line

    errors: list[str] = []
    count = 0
    try:
        for lineno, text in _replay_lines(file):
            if text is None:
                errors.append(f"{file}:{lineno}: not UTF-8, or longer than {MAX_LINE_BYTES:,} bytes")
            elif text.strip():
                try:
                    parse_replay_line(text, str(file), lineno)
                    count += 1
                except ReplayLineError as exc:
                    errors.append(str(exc))
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc}") from exc
    return errors, count


async def _replay(
    settings: ModbotSettings,
    docs: list[PolicyDocument],
    file: Path,
    count: int,
    as_json: bool,
    explicit_policies: bool,
    print_effects: bool,
) -> None:
    from tqdm import tqdm

    from adapters.console.mapping import message_from_line, parse_replay_line, readable_line, replay_record
    from adapters.console.platform import Submitter
    from adapters.console.sink import ConsoleAdapter
    from adapters.launcher import declared_capabilities
    from bot.bootstrap import bootstrap
    from bot.policy_library import install_policies

    # stderr: stdout stays one line per case. Replay is not a running bot (no jobs), but it
    # works the queue: it is the only such process on the database while it runs.
    modbot = await bootstrap(
        settings,
        {"console": ConsoleAdapter(enabled=print_effects)},
        capabilities=declared_capabilities(),
        run_jobs=False,
        runner="modbot replay",
    )
    progress = tqdm(total=count, file=sys.stderr, unit="msg", disable=count < 20, mininterval=0.5)
    printed: set[str] = set()

    def emit(case: Case) -> None:
        if case.id in printed:  # a resumed message may finish before the loop reaches it
            return
        printed.add(case.id)
        typer.echo(json.dumps(replay_record(case), ensure_ascii=False) if as_json else readable_line(case))
        progress.update(1)

    try:
        servers: dict[tuple[str, str], None] = {}
        for lineno, text in _replay_lines(file):
            if text and text.strip():
                line = parse_replay_line(text, str(file), lineno)
                servers.setdefault(("console", line.server))
        for platform, server_id in servers:
            if explicit_policies or not await modbot.store.policies.live(platform, server_id):
                await install_policies(modbot.store, platform, server_id, docs, actor="modbot replay")
        modbot.pipeline.observers.append(emit)
        received = datetime.now(UTC)
        # The whole file is taken in first, concurrently (intake shares group commits), then
        # judged: a message edited later in the file is judged once, as it finally reads.
        async with Submitter(modbot) as submitter:
            for lineno, text in _replay_lines(file):
                if text and text.strip():
                    await submitter.submit(message_from_line(parse_replay_line(text, str(file), lineno), received))
        async with modbot:
            await modbot.pipeline.drain()
            # Seen by an earlier run (or twice in this file): shown from its case, not decided again.
            for key in submitter.repeats:
                case = await modbot.store.cases.for_message(*key)
                if case is not None:
                    emit(case)
    finally:
        progress.close()
        await modbot.aclose()


# ---------------------------------------------------------------- export and status


@app.command()
def export(
    db: DbOption = None,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels",
            help="Human decisions as labels instead: text (where retained), policy and version, the model's"
            " verdict and the human label, one JSON line each.",
        ),
    ] = False,
) -> None:
    """Every case of every server as JSON lines (or, with --labels, every human decision)."""
    settings = load_settings(db)
    if not settings.db.exists():
        raise fail(f"no database at {settings.db}: pass --db or set MODBOT_DB")

    async def go(modbot: ModbotApp) -> None:
        from adapters.console.mapping import export_record

        if labels:
            async for label in modbot.labels.export_every_server():
                typer.echo(json.dumps(label, ensure_ascii=False))
            return
        async for case in modbot.store.cases.every():
            typer.echo(json.dumps(export_record(case), ensure_ascii=False))

    with_app(db, go)


@app.command()
def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The queue, the database's size, the model's health as last probed, and each platform's limits."""
    settings = load_settings(db)
    if not settings.db.exists():
        raise fail(f"no database at {settings.db}: pass --db or set MODBOT_DB")
    report = with_app(db, lambda modbot: modbot.status.report())
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False))
    else:
        typer.echo("\n".join(report.lines()))


def main() -> None:
    # Command modules register on `app` and `policy_app` when imported.
    from adapters.console import (  # noqa: F401
        ops_cli,
        policy_admin_cli,
        policy_eng_cli,
        privacy_cli,
        run_cli,
        storage_cli,
        workflow_cli,
    )

    app()


if __name__ == "__main__":
    # As `python -m`, this file is __main__, a second copy of the module: the command
    # modules register on the importable one, so run that.
    from adapters.console import cli

    cli.main()
