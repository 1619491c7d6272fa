"""A fake Ollama on loopback: /api/chat with a scriptable model, slots, a queue limit and 503s.

The default "model" is deterministic: it reads the policy (system message) and the content
(the user message's JSON) and flags the content when it contains one of `bad_words`,
citing the policy's first VIOLATES rule id. Tests replace `responder` to script answers.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


@dataclass
class FakeOllama:
    bad_words: set[str] = field(default_factory=lambda: {"idiot", "scam", "kill you", "badword"})
    # 0 slots: unlimited. Otherwise at most `slots` requests are served at once; up to
    # `max_queue` more wait; beyond that the server answers 503 as Ollama does.
    slots: int = 0
    max_queue: int = 512
    latency: float = 0.0
    missing_models: set[str] = field(default_factory=lambda: {"missing"})
    responder: Callable[[dict[str, Any]], Reply | Awaitable[Reply]] | None = None

    def __post_init__(self) -> None:
        self.rec = Recorder()
        self.calls = 0
        self.rejected_503 = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.busy_seconds = 0.0  # summed over slots: the slot-busy fraction's numerator
        self._waiting = 0
        self._slot_sem: asyncio.Semaphore | None = None
        app = web.Application(middlewares=[recording_middleware(self.rec)])
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        self._runner = web.AppRunner(app, access_log=None)
        self.host = ""

    async def start(self, port: int = 0) -> FakeOllama:
        self.port = await start_on_loopback(self._runner, port)
        self.host = f"http://127.0.0.1:{self.port}"
        if self.slots:
            self._slot_sem = asyncio.Semaphore(self.slots)
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.rec.find("POST", "/api/chat")]

    def default_reply(self, request: dict[str, Any]) -> Reply:
        text = str(content_of(request)["content"]["text"]).casefold()
        system = system_of(request)
        if any(word in text for word in self.bad_words):
            rule = _VIOLATES_RULE.search(system)
            ids = [rule.group(1)] if rule else ["X1.a"]
            return Reply(verdict_json(1, ids, "high", f"Contains abusive wording ({ids[0]})."))
        safe = _SAFE_RULE.search(system)
        return Reply(verdict_json(0, [safe.group(1)] if safe else [], "high", "No rule applies."))

    async def _version(self, request: web.Request) -> web.Response:
        return _json({"version": "0.12.9-fake"})

    async def _tags(self, request: web.Request) -> web.Response:
        return _json({"models": [{"name": "gpt-oss-safeguard:20b", "model": "gpt-oss-safeguard:20b"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body.get("model", "")
        if model in self.missing_models:
            return _json({"error": f"model '{model}' not found"}, status=404)
        if self._slot_sem is not None:
            if self._waiting >= self.max_queue and self._slot_sem.locked():
                self.rejected_503 += 1
                return _json({"error": "server busy, please try again.  maximum pending requests exceeded"}, 503)
            self._waiting += 1
            try:
                await self._slot_sem.acquire()
            finally:
                self._waiting -= 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        started = time.perf_counter()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            reply = self.responder(body) if self.responder else self.default_reply(body)
            if asyncio.iscoroutine(reply) or isinstance(reply, Awaitable):
                reply = await reply
        finally:
            self.in_flight -= 1
            self.busy_seconds += time.perf_counter() - started
            self.calls += 1
            if self._slot_sem is not None:
                self._slot_sem.release()
        assert isinstance(reply, Reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if body.get("think") is not None:
            message["thinking"] = reply.thinking
        return _json(
            {
                "model": model,
                "created_at": datetime.now(UTC).isoformat(),
                "message": message,
                "done": True,
                "done_reason": "stop",
                "total_duration": 1_000_000,
                "load_duration": 1000,
                "prompt_eval_count": reply.prompt_eval_count,
                "prompt_eval_duration": 500_000,
                "eval_count": reply.eval_count,
                "eval_duration": 400_000,
            }
        )


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    # Exactly application/json: clients are pickier than aiohttp's json_response default.
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type="application/json")


async def serve_forever(port: int) -> None:  # pragma: no cover - used by subprocess tests
    fake = await FakeOllama().start(port)
    print(fake.host, flush=True)
    await asyncio.Event().wait()
