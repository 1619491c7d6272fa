"""A fake Ollama on loopback: /api/chat, /api/tags and /api/version over the shared fake model server.

What the "model" answers, the slots, the 503s, hangs and crashes: tests/fakes/model_server.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.model_server import (
    FakeModelServer,
    Reply,
    content_of,
    json_response,
    system_of,
    verdict_json,
)

__all__ = ["FakeOllama", "Reply", "content_of", "serve_forever", "system_of", "verdict_json"]

SERVED_MODEL = "gpt-oss-safeguard:20b"


@dataclass
class FakeOllama(FakeModelServer):
    missing_models: set[str] = field(default_factory=lambda: {"missing"})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)

    async def start(self, port: int = 0) -> FakeOllama:
        await super().start(port)
        return self

    def chat_requests(self) -> list[dict]:  # type: ignore[type-arg]
        return [r.json for r in self.rec.find("POST", "/api/chat")]

    async def _version(self, request: web.Request) -> web.Response:
        return json_response({"version": "0.12.9-fake"})

    async def _tags(self, request: web.Request) -> web.Response:
        served = [] if SERVED_MODEL in self.missing_models else [{"name": SERVED_MODEL, "model": SERVED_MODEL}]
        return json_response({"models": served})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body.get("model", "")
        if model in self.missing_models:
            return json_response({"error": f"model '{model}' not found"}, status=404)
        reply = await self.generate(body)
        if reply is None:
            return json_response({"error": "server busy, please try again.  maximum pending requests exceeded"}, 503)
        message = {"role": "assistant", "content": reply.content}
        if body.get("think") is not None:
            message["thinking"] = reply.thinking
        return json_response(
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


async def serve_forever(port: int) -> None:  # pragma: no cover - used by subprocess tests
    fake = await FakeOllama().start(port)
    print(fake.host, flush=True)
    await asyncio.Event().wait()
