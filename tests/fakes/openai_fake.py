"""A fake OpenAI-compatible server on loopback: /v1/chat/completions and /v1/models.

It answers as the engines the bot meets do, over the shared fake model server
(tests/fakes/model_server.py: the scripted model, slots, hangs, crashes):

- `schema_dialects`: the `response_format` types it takes. vLLM, SGLang and Ollama's /v1
  take "json_schema"; llama-cpp-python's server takes "json_object" (with a "schema") and
  refuses "json_schema" with a 500 whose message is pydantic's validation error. Another
  type is refused with `dialect_status` (vLLM: 400), the message naming `response_format`.
- `reasoning_field`: where the reasoning comes back: "reasoning_content" (vLLM, SGLang,
  llama.cpp), "reasoning" (newer vLLM, Ollama's /v1), or None (no reasoning channel).
- `api_key`: when set, a request without `Authorization: Bearer <api_key>` gets 401.
- `served_models`: what /v1/models lists; a request for another model gets vLLM's 404.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.model_server import FakeModelServer, Reply, json_response, verdict_json

__all__ = ["FakeOpenAI", "Reply", "verdict_json"]

_ids = itertools.count(1)


def _error(message: str, kind: str, status: int) -> web.Response:
    return json_response({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


@dataclass
class FakeOpenAI(FakeModelServer):
    served_models: set[str] = field(default_factory=lambda: {"openai/gpt-oss-safeguard-20b"})
    schema_dialects: frozenset[str] = frozenset({"json_schema"})
    dialect_status: int = 400
    reasoning_field: str | None = "reasoning_content"
    api_key: str | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    async def start(self, port: int = 0) -> FakeOpenAI:
        await super().start(port)
        return self

    @property
    def base_url(self) -> str:
        return f"{self.host}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.rec.find("POST", "/v1/chat/completions")]

    def _refused_key(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error("Incorrect API key provided.", "authentication_error", 401)

    async def _models(self, request: web.Request) -> web.Response:
        refused = self._refused_key(request)
        if refused is not None:
            return refused
        models = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in sorted(self.served_models)]
        return json_response({"object": "list", "data": models})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused_key(request)
        if refused is not None:
            return refused
        body = await request.json()
        model = body.get("model", "")
        if model not in self.served_models:
            return _error(f"The model `{model}` does not exist.", "NotFoundError", 404)
        if body.get("stream"):
            return _error("this fake answers stream=false only", "BadRequestError", 400)
        kind = (body.get("response_format") or {}).get("type")
        if kind not in self.schema_dialects:
            problem = f"1 validation error: ('body', 'response_format', 'type'): {kind!r} is not supported"
            return _error(problem, "BadRequestError", self.dialect_status)
        reply = await self.generate(body)
        if reply is None:
            return _error("The server is busy", "ServiceUnavailableError", 503)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if self.reasoning_field is not None:
            message[self.reasoning_field] = reply.thinking
        return json_response(
            {
                "id": f"chatcmpl-{next(_ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {
                    "prompt_tokens": reply.prompt_eval_count,
                    "completion_tokens": reply.eval_count,
                    "total_tokens": reply.prompt_eval_count + reply.eval_count,
                },
            }
        )
