"""`modbot db compact`: give the disk back the space retention freed, and turn on incremental auto-vacuum."""

from __future__ import annotations

import asyncio

import typer

from adapters.console.options import DbOption, app, fail, load_settings

db_app = typer.Typer(help="The database file itself.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("compact")
def compact(db: DbOption = None) -> None:
    """Give free space back to the disk; on a file made before modbot turned it on, enable incremental auto-vacuum.

    The first time on such a file, this rewrites the whole file (VACUUM): it needs the file
    to itself (stop the bot) and free disk space as large as the file. After that the bot
    gives space back by itself, a little at a time, as retention frees it.
    """
    from bot.store.ports import RunnerLockHeld
    from bot.store.sqlite import SqliteStore

    settings = load_settings(db)
    if not settings.db.exists():
        raise fail(f"no database at {settings.db}: pass --db or set MODBOT_DB")

    async def go() -> tuple[int, int, str]:
        before = settings.db.stat().st_size
        # As the one process on the file: opening converts a small file already.
        store = await SqliteStore.open(settings.db, runner="modbot db compact")
        try:
            await store.convert_to_incremental_vacuum()
            while await store.reclaim_space(1 << 16) > 0:
                pass
            return before, await store.size_bytes(), store.auto_vacuum
        finally:
            await store.close()

    try:
        before, after, mode = asyncio.run(go())
    except RunnerLockHeld as exc:
        raise fail(f"{exc}\nCompacting rewrites the file: run it while the bot is stopped.") from exc
    typer.echo(f"{settings.db}: {before:,} bytes before, {after:,} bytes now; auto-vacuum {mode}")
