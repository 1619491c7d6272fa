"""What every fake model server shares, whatever API it speaks: a scriptable model, slots, a queue limit, hangs.

The default "model" is deterministic: it reads the policy (system message) and the content
(the user message's JSON, as bot.classifier.prompt builds it) and flags the content when it
contains one of `bad_words`, citing the policy's first VIOLATES rule id. Tests replace
`responder` to script answers.

Slots: 0 means unlimited. Otherwise at most `slots` requests are served at once, up to
`max_queue` more wait, and beyond that the server answers 503 as Ollama does.

A hanging call (`hang=True`, or a responder that never returns) waits until the client
gives up: aiohttp cancels the handler when the client closes the connection
(`handler_cancellation=True`), and the fake counts that in `disconnects`, which is how
tests see that a timed-out call really stopped the generation. `kill()` is a crash: every
open connection is reset and the port stops listening.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recorder import Recorder, recording_middleware, start_on_loopback

_VIOLATES_RULE = re.compile(r"^-\s+([A-Z]{1,5}[1-9][0-9]?\.[a-z0-9]{1,3})\s*:", re.MULTILINE)
_SAFE_RULE = re.compile(r"^-\s+([A-Z]{1,5}0\.[a-z0-9]{1,3})\s*:", re.MULTILINE)


@dataclass
class Reply:
    content: str
    thinking: str = "The content is checked against each rule."
    prompt_eval_count: int = 120
    eval_count: int = 30


def verdict_json(
    violation: int,
    rule_ids: list[str] | None = None,
    confidence: str = "high",
    rationale: str = "",
    category: str | None = None,
) -> str:
    ids = rule_ids or []
    return json.dumps(
        {
            "violation": violation,
            "policy_category": category if category is not None else (ids[0] if violation and ids else None),
            "rule_ids": ids,
            "confidence": confidence,
            "rationale": rationale or ("Matches " + ", ".join(ids) if violation else "No rule applies."),
        }
    )


def content_of(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload the bot put in the user message (content, context, appeal)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    return json.loads(user[user.index("\n\n{") + 2 :])  # type: ignore[no-any-return]


def system_of(request: dict[str, Any]) -> str:
    return next((m["content"] for m in request["messages"] if m["role"] == "system"), "")


def json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    # Exactly application/json: clients are pickier than aiohttp's json_response default.
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type="application/json")


Responder = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]


@dataclass
class FakeModelServer:
    bad_words: set[str] = field(default_factory=lambda: {"idiot", "scam", "kill you", "badword"})
    slots: int = 0
    max_queue: int = 512
    latency: float = 0.0
    responder: Responder | None = None
    # Every call waits until the client disconnects.
    hang: bool = False

    def __post_init__(self) -> None:
        self.rec = Recorder()
        self.calls = 0  # calls that reached the model (answered, failed or abandoned)
        self.answered = 0  # calls whose answer was produced
        self.disconnects = 0  # calls abandoned by the client while the model worked on them
        self.rejected_503 = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.busy_seconds = 0.0  # summed over slots: the slot-busy fraction's numerator
        self._waiting = 0
        self._serving: dict[int, float] = {}  # started at, for each call holding a slot
        self._slot_sem: asyncio.Semaphore | None = None
        self._stopping = False
        self._transports: set[asyncio.Transport] = set()
        app = web.Application(middlewares=[self._track_connection, recording_middleware(self.rec)])
        self.add_routes(app)
        # handler_cancellation: the handler is cancelled when its client goes away, as a real
        # model server stops generating for a client that disconnected.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        self.host = ""
        self.port = 0

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, port: int = 0) -> FakeModelServer:
        self.port = await start_on_loopback(self._runner, port)
        self.host = f"http://127.0.0.1:{self.port}"
        if self.slots:
            self._slot_sem = asyncio.Semaphore(self.slots)
        return self

    async def stop(self) -> None:
        self._stopping = True
        await self._runner.cleanup()

    async def kill(self) -> None:
        """Die mid-run: reset every open connection, then stop listening."""
        self._stopping = True
        for transport in list(self._transports):
            transport.abort()
        await self._runner.cleanup()

    async def wait_for_disconnects(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.disconnects < count:
                await asyncio.sleep(0.01)

    @web.middleware
    async def _track_connection(self, request: web.Request, handler: Any) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            self._transports.add(transport)
        return await handler(request)  # type: ignore[no-any-return]

    def busy_seconds_now(self) -> float:
        """Slot-seconds spent so far, the calls still being served included: for busy fractions over a window."""
        now = time.perf_counter()
        return self.busy_seconds + sum(now - started for started in self._serving.values())

    def default_reply(self, request: dict[str, Any]) -> Reply:
        text = str(content_of(request)["content"]["text"]).casefold()
        system = system_of(request)
        if any(word in text for word in self.bad_words):
            rule = _VIOLATES_RULE.search(system)
            ids = [rule.group(1)] if rule else ["X1.a"]
            return Reply(verdict_json(1, ids, "high", f"Contains abusive wording ({ids[0]})."))
        safe = _SAFE_RULE.search(system)
        return Reply(verdict_json(0, [safe.group(1)] if safe else [], "high", "No rule applies."))

    async def generate(self, body: dict[str, Any]) -> Reply | None:
        """The model's answer to one request, with the slots taken; None when the queue is full (503)."""
        if self._slot_sem is not None:
            if self._waiting >= self.max_queue and self._slot_sem.locked():
                self.rejected_503 += 1
                return None
            self._waiting += 1
            try:
                await self._slot_sem.acquire()
            finally:
                self._waiting -= 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        started = time.perf_counter()
        ticket = id(asyncio.current_task())
        self._serving[ticket] = started
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.hang:
                await asyncio.Event().wait()
            reply = self.responder(body) if self.responder else self.default_reply(body)
            if not isinstance(reply, Reply):
                reply = await reply
            self.answered += 1
            return reply
        except asyncio.CancelledError:
            if not self._stopping:
                self.disconnects += 1
            raise
        finally:
            self.in_flight -= 1
            del self._serving[ticket]
            self.busy_seconds += time.perf_counter() - started
            self.calls += 1
            if self._slot_sem is not None:
                self._slot_sem.release()
