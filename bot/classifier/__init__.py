"""The model side: prompts, verdict parsing, and the Ollama backend."""

from bot.classifier.ollama_backend import ModelRequestRejected, ModelUnavailable, OllamaClassifier, RetryPolicy
from bot.classifier.prompt import VERDICT_SCHEMA, ClassificationRequest, build_messages
from bot.classifier.verdict import MalformedAnswer, ModelAnswer, parse_answer

__all__ = [
    "VERDICT_SCHEMA",
    "ClassificationRequest",
    "MalformedAnswer",
    "ModelAnswer",
    "ModelRequestRejected",
    "ModelUnavailable",
    "OllamaClassifier",
    "RetryPolicy",
    "build_messages",
    "parse_answer",
]
