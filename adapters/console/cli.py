"""The `modbot` command: classify, replay, export, and (in sibling modules) administer."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from adapters.console._groups import policy_app
from adapters.console.mapping import (
    ReplayLineError,
    export_record,
    message_from_line,
    parse_replay_line,
    readable_line,
    replay_record,
)
from adapters.console.render import verdict_line
from adapters.console.sink import ConsoleEffectSink
from bot.bootstrap import bootstrap, build_classifier, configure_logging
from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable, RetryPolicy
from bot.domain import Author, Case, Effort, Message
from bot.policy_format import PolicyDocument, PolicyFormatError
from bot.policy_library import as_policy, install_policies, library_files, load_policies
from bot.settings import ModbotSettings
from bot.store import SqliteStore

app = typer.Typer(
    name="modbot",
    help="Moderation bot judged by a local gpt-oss-safeguard model against your own policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(policy_app, name="policy")

PolicyOption = Annotated[
    list[Path] | None,
    typer.Option("--policy", "-p", help="Policy file (repeatable). Default: every file in policies/."),
]
DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite file. Default: $MODBOT_DB or modbot.db.")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines instead of readable text.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"modbot: {message}", err=True)
    return typer.Exit(code)


def load_settings(db: Path | None = None) -> ModbotSettings:
    settings = ModbotSettings()
    if db is not None:
        settings = settings.model_copy(update={"db": db})
    configure_logging(settings.log_level)
    return settings


def policy_documents(settings: ModbotSettings, files: list[Path] | None) -> list[PolicyDocument]:
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
    effort: Annotated[Effort, typer.Option(help="Reasoning effort.")] = Effort.LOW,
    as_json: JsonOption = False,
) -> None:
    """Classify one text against policies and print each policy's verdict."""
    settings = load_settings()
    docs = policy_documents(settings, policy)
    code = asyncio.run(_check(settings, docs, text, effort, as_json))
    raise typer.Exit(code)


async def _check(settings: ModbotSettings, docs: list[PolicyDocument], text: str, effort: Effort, as_json: bool) -> int:
    # One command, one answer: the operator gets a single line if the model can't be had,
    # not a warning per retry.
    logging.getLogger("bot.classifier").setLevel(logging.ERROR)
    classifier = build_classifier(settings, RetryPolicy(max_attempts=3, initial_seconds=0.5, max_seconds=4))
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
    """Run a file of messages through the whole pipeline; effects are printed, not executed."""
    settings = load_settings(db)
    try:
        raw_lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from exc
    messages: list[Message] = []
    errors: list[str] = []
    received = datetime.now(UTC)
    for lineno, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            messages.append(message_from_line(parse_replay_line(raw, str(file), lineno), received))
        except ReplayLineError as exc:
            errors.append(str(exc))
    if errors:
        # Nothing is submitted from a file with bad lines: fix them and run again.
        raise fail(
            "bad input, nothing was replayed:\n  "
            + "\n  ".join(errors[:50])
            + (f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else "")
        )
    docs = policy_documents(settings, policy)
    asyncio.run(
        _replay(
            settings, docs, messages, as_json, explicit_policies=policy is not None, print_effects=not quiet_effects
        )
    )


async def _replay(
    settings: ModbotSettings,
    docs: list[PolicyDocument],
    messages: list[Message],
    as_json: bool,
    explicit_policies: bool,
    print_effects: bool,
) -> None:
    sink = ConsoleEffectSink(enabled=print_effects)  # stderr: stdout stays one line per message
    app_ = await bootstrap(settings, {"console": sink})
    progress = tqdm(total=len(messages), file=sys.stderr, unit="msg", disable=len(messages) < 20, mininterval=0.5)

    printed: set[tuple[str, str, str]] = set()

    def emit(case: Case) -> None:
        if case.message.key in printed:  # a resumed message may finish before the loop reaches it
            return
        printed.add(case.message.key)
        typer.echo(json.dumps(replay_record(case), ensure_ascii=False) if as_json else readable_line(case))
        progress.update(1)

    try:
        for server_id in dict.fromkeys(m.server_id for m in messages):
            if explicit_policies or not await app_.store.live_policies(server_id):
                await install_policies(app_.store, server_id, docs, actor="modbot replay")
        app_.pipeline.observers.append(emit)
        await app_.pipeline.start()
        for message in messages:
            if await app_.pipeline.submit(message):
                continue
            # Seen by an earlier run. Still open: start() resumed it, and it is printed when
            # finished. Done: it is shown from its case, not decided again.
            if await app_.store.queue_state(*message.key) == "done":
                case = await app_.store.case_for_message(*message.key)
                if case is not None:
                    emit(case)
        await app_.pipeline.drain()
    finally:
        progress.close()
        await app_.aclose()


# ---------------------------------------------------------------- export


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
    """Every case as JSON lines (or, with --labels, every human decision)."""
    settings = load_settings(db)
    if not settings.db.exists():
        raise fail(f"no database at {settings.db}: pass --db or set MODBOT_DB")
    asyncio.run(_export(settings.db, labels))


async def _export(db: Path, labels: bool = False) -> None:
    from bot.workflow import export_labels

    store = await SqliteStore.open(db)
    try:
        if labels:
            async for label in export_labels(store):
                typer.echo(json.dumps(label, ensure_ascii=False))
            return
        async for case in store.iter_cases():
            record: dict[str, Any] = export_record(case)
            typer.echo(json.dumps(record, ensure_ascii=False))
    finally:
        await store.close()


def main() -> None:
    # Command modules register on `app` and `policy_app` when imported.
    from adapters.console import policy_admin_cli, policy_eng_cli, run_cli, workflow_cli  # noqa: F401

    app()


if __name__ == "__main__":
    # As `python -m`, this file is __main__, a second copy of the module: the command
    # modules register on the importable one, so run that.
    from adapters.console import cli

    cli.main()
