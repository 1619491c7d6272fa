"""Operating commands: `modbot backup` (an online copy of the database, safe while the bot runs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from adapters.console.options import DbOption, JsonOption, app, fail, load_settings


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a new file; --force to replace one).")],
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Copy the database while the bot runs: one consistent snapshot, checked, then moved into place.

    The copy is a complete database: to restore it, stop the bot, put it in place of the
    database file (removing the old file's -wal and -shm files), and start the bot.
    """
    from bot.store.backup import BackupError, backup_database

    settings = load_settings(db)
    try:
        report = asyncio.run(backup_database(settings.db, path, overwrite=force))
    except BackupError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "source": str(report.source),
                    "target": str(report.target),
                    "bytes": report.bytes,
                    "pages": report.pages,
                    "schema_version": report.schema_version,
                    "seconds": round(report.seconds, 3),
                }
            )
        )
        return
    typer.echo(
        f"backed up {report.source} to {report.target}: {report.bytes / 1_048_576:.1f} MiB, "
        f"schema version {report.schema_version}, integrity ok, {report.seconds:.1f} s"
    )
