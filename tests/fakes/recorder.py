"""Request recording and one-shot fault injection shared by the fake servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ResponseFactory = Callable[[], web.StreamResponse]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, Any] | None = None


class Recorder:
    """Keeps every request and lets tests await a matching one."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._cond = asyncio.Condition()
        self._faults: list[list[Any]] = []  # [method, path, make_response, remaining]

    def inject(self, method: str, path: str, make_response: ResponseFactory, times: int = 1) -> None:
        """The next `times` matching requests get make_response() instead of the handler."""
        self._faults.append([method, path, make_response, times])

    def take_fault(self, method: str, path: str) -> ResponseFactory | None:
        for fault in self._faults:
            if fault[0] == method and fault[1] == path and fault[3] > 0:
                fault[3] -= 1
                return fault[2]  # type: ignore[no-any-return]
        return None

    async def add(self, rec: Recorded) -> None:
        async with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def find(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def wait_for(
        self, method: str, path: str | Callable[[str], bool], timeout: float = 5.0, count: int = 1
    ) -> Recorded:
        match = path if callable(path) else (lambda p: p == path)

        def found() -> list[Recorded]:
            return [r for r in self.requests if r.method == method and match(r.path)]

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: len(found()) >= count), timeout)
            return found()[count - 1]


def recording_middleware(recorder: Recorder, strip_prefix: str = "") -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        path = request.path[len(strip_prefix) :] if request.path.startswith(strip_prefix) else request.path
        rec = Recorded(request.method, path, dict(request.query), dict(request.headers), body)
        if request.content_type == "application/json" and body:
            rec.json = json.loads(body)
        elif request.content_type == "application/x-www-form-urlencoded":
            rec.form = dict(await request.post())
        await recorder.add(rec)
        fault = recorder.take_fault(rec.method, rec.path)
        if fault is not None:
            return fault()
        return await handler(request)  # type: ignore[no-any-return]

    return middleware


async def start_on_loopback(runner: web.AppRunner, port: int = 0) -> int:
    """Serve a fake's app on 127.0.0.1 (port 0: any free one) and return the port it got."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
