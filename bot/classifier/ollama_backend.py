"""gpt-oss-safeguard behind Ollama's native /api/chat, with the official `ollama` client."""

from __future__ import annotations

import httpx
import ollama

from bot.classifier.backend import RawAnswer, endpoint_name, public_url
from bot.classifier.classifier import ModelClassifier, RetryPolicy
from bot.classifier.errors import EndpointFailure, ModelRequestRejected
from bot.classifier.pool import EndpointPool
from bot.classifier.prompt import ClassificationRequest, build_messages
from bot.classifier.verdict import VERDICT_SCHEMA

# Statuses that say "not now" rather than "not this request": Ollama answers 503 when its
# queue is full, 500 when a runner crashes; -1 is an error line in the middle of a stream.
TRANSIENT_STATUS = {-1, 408, 429, 500, 502, 503, 504}
# Connecting is quick or it is not going to happen: a host that drops packets is
# unreachable, not slow, and must not wait as long as a generation may take.
CONNECT_SECONDS = 10.0
# The client's own read timeout sits past the pool's deadline, so the deadline is always
# what ends a stuck call and a client timeout can only mean the connection failed.
CLIENT_GRACE_SECONDS = 5.0


def client_timeout(deadline: float) -> httpx.Timeout:
    return httpx.Timeout(deadline + CLIENT_GRACE_SECONDS, connect=min(deadline, CONNECT_SECONDS))


class OllamaBackend:
    """One Ollama server: /api/chat with `think` as the effort and `format` as the verdict schema."""

    def __init__(
        self,
        host: str,
        model: str,
        *,
        timeout: float = 300.0,
        keep_alive: str | float = "30m",
        num_ctx: int = 8192,
        name: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        self.host = public_url(host)  # for messages: the client alone holds any credentials
        self.model = model
        self.name = name or endpoint_name(host)
        self._client = ollama.AsyncClient(host=host, timeout=client_timeout(timeout))
        self._keep_alive = keep_alive
        self._options: dict[str, float] = {"num_ctx": num_ctx}
        if max_tokens is not None:  # see ModbotSettings.model_max_tokens: a ceiling, not a budget
            self._options["num_predict"] = max_tokens
        if temperature is not None:  # unset: the model's own default
            self._options["temperature"] = temperature

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # untyped in ollama 0.6

    async def complete(self, request: ClassificationRequest) -> RawAnswer:
        try:
            response = await self._client.chat(
                model=self.model,
                messages=build_messages(request),
                think=request.effort.value,
                format=VERDICT_SCHEMA,
                # Never streamed: with gpt-oss thinking, Ollama does not enforce the schema on
                # a stream (ollama#14440). Not capped unless the operator set a ceiling: a
                # small num_predict lets the reasoning eat the budget and leave no answer.
                stream=False,
                options=self._options,
                keep_alive=self._keep_alive,
            )
        except ollama.ResponseError as exc:
            raise self._explain(exc) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise EndpointFailure(self.name, self._unreachable(exc)) from exc
        return RawAnswer(
            content=response.message.content or "",
            reasoning=response.message.thinking or "",
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
        )

    async def probe(self) -> str | None:
        try:
            listing = await self._client.list()
        except ollama.ResponseError as exc:
            return f"model server at {self.host} answered {exc.status_code}: {exc.error}"
        except (ConnectionError, httpx.TransportError) as exc:
            return self._unreachable(exc)
        names = {m.model for m in listing.models if m.model}
        if self.model not in names and f"{self.model}:latest" not in names:
            return f"model {self.model} is not pulled on {self.host}: run `ollama pull {self.model}`"
        return None

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"model server unreachable at {self.host} ({type(exc).__name__}): start Ollama with "
            f"`ollama serve` (or `docker compose up ollama`), or set OLLAMA_HOST"
        )

    def _explain(self, exc: ollama.ResponseError) -> Exception:
        if exc.status_code == 404:
            return EndpointFailure(
                self.name,
                f"model {self.model} is not available on {self.host}: run `ollama pull {self.model}`",
                missing_model=True,
            )
        if exc.status_code in (401, 403):
            # Ollama has no credentials of its own: a proxy in front of it refused us.
            return EndpointFailure(
                self.name, f"model server at {self.host} refused access ({exc.status_code})", transient=False
            )
        if exc.status_code in TRANSIENT_STATUS:
            return EndpointFailure(self.name, f"model server at {self.host} answered {exc.status_code}: {exc.error}")
        return ModelRequestRejected(f"model server at {self.host} refused the request ({exc.status_code}): {exc.error}")


class OllamaClassifier(ModelClassifier):
    """The classifier over a single Ollama server: what the bot runs with the default settings."""

    def __init__(
        self,
        host: str,
        model: str,
        *,
        concurrency: int = 2,
        timeout: float = 300.0,
        keep_alive: str | float = "30m",
        num_ctx: int = 8192,
        retry: RetryPolicy | None = None,
        timeout_retries: int = 1,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        backend = OllamaBackend(
            host,
            model,
            timeout=timeout,
            keep_alive=keep_alive,
            num_ctx=num_ctx,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        pool = EndpointPool.of_one(backend, bound=concurrency, timeout=timeout)
        super().__init__(pool, retry=retry, timeout_retries=timeout_retries)
        self.host = host
        self.model = model
