"""Group commit: concurrent writers of one kind share a transaction.

While one batch is being written, new items wait; the next batch takes them all. Under
load this turns a commit per message into a commit per batch, without delaying a lone
writer at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import aiosqlite

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 512


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]],
        write: Callable[[aiosqlite.Connection, Sequence[Item]], Awaitable[Sequence[Result]]],
    ) -> None:
        self._transaction = transaction
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def wait_idle(self) -> None:
        """Return once every item handed in so far is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                results = await self._commit([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                    continue
                # One bad item must not fail its neighbours: write each on its own.
                for pair in batch:
                    await self._single(pair)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _single(self, pair: tuple[Item, asyncio.Future[Result]]) -> None:
        try:
            (result,) = await self._commit([pair[0]])
        except Exception as exc:
            _fail([pair], exc)
            return
        if not pair[1].done():
            pair[1].set_result(result)

    async def _commit(self, items: list[Item]) -> Sequence[Result]:
        async with self._transaction() as conn:
            return await self._write(conn, items)


def _fail(batch: list[tuple[Item, asyncio.Future[Result]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
