"""The model side: prompts, the verdict schema, the shared retry and review rules, and the backends.

Layout:
- prompt.py: what the model is asked (ClassificationRequest, build_messages);
- verdict.py: the answer (ModelAnswer, its JSON schema, parse_answer);
- errors.py: what can go wrong, backend-neutral;
- backend.py: what a backend is (one wire call);
- pool.py: endpoints, their bounds, affinity, spill-over, failover, probes;
- classifier.py: the Classifier port over a pool (retries, deadlines, validation, review);
- ollama_backend.py, openai_backend.py: the two wire protocols;
- endpoints.py, factory.py: the classifier the settings describe.

The backends import their client libraries, which are slow to import (the openai package
takes most of a second), so they are loaded on first use, not with this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.classifier.classifier import ModelClassifier, RetryPolicy
from bot.classifier.errors import EndpointFailure, EndpointTimedOut, ModelRequestRejected, ModelUnavailable
from bot.classifier.prompt import ClassificationRequest, build_messages
from bot.classifier.verdict import VERDICT_SCHEMA, MalformedAnswer, ModelAnswer, parse_answer

if TYPE_CHECKING:  # pragma: no cover
    from bot.classifier.factory import build_classifier
    from bot.classifier.ollama_backend import OllamaBackend, OllamaClassifier
    from bot.classifier.openai_backend import OpenAIBackend, OpenAIClassifier

_LAZY = {
    "OllamaBackend": "bot.classifier.ollama_backend",
    "OllamaClassifier": "bot.classifier.ollama_backend",
    "OpenAIBackend": "bot.classifier.openai_backend",
    "OpenAIClassifier": "bot.classifier.openai_backend",
    "build_classifier": "bot.classifier.factory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bot.classifier' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "VERDICT_SCHEMA",
    "ClassificationRequest",
    "EndpointFailure",
    "EndpointTimedOut",
    "MalformedAnswer",
    "ModelAnswer",
    "ModelClassifier",
    "ModelRequestRejected",
    "ModelUnavailable",
    "OllamaBackend",
    "OllamaClassifier",
    "OpenAIBackend",
    "OpenAIClassifier",
    "RetryPolicy",
    "build_classifier",
    "build_messages",
    "parse_answer",
]
