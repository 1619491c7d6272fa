"""The Web API client the adapter shares with Bolt: the configured base URL, and retries that stay bounded."""

from __future__ import annotations

import logging

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Seconds: a longer Retry-After is not waited out inside an effect (it would hold a
# pipeline worker that long); the effect is recorded failed with Slack's answer instead.
MAX_RATE_LIMIT_WAIT = 30
REQUEST_TIMEOUT_SECONDS = 15


class BoundedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits Retry-After, then retries), but never for longer than `max_wait` seconds."""

    def __init__(self, max_retry_count: int = 2, max_wait: int = MAX_RATE_LIMIT_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        retry_after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            wait = int(retry_after[0]) if retry_after else 1
        except ValueError:
            wait = 1
        if wait > self.max_wait:
            log.warning("Slack asks to wait %ss before %s; not waiting that long", wait, request.url.rsplit("/", 1)[-1])
            return False
        return True


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        BoundedRateLimitRetry(),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]


def build_web_client(token: str, api_url: str) -> AsyncWebClient:
    """The bot's client. Bolt copies its base URL and retry handlers into every request's client."""
    return AsyncWebClient(
        token=token, base_url=api_url, timeout=REQUEST_TIMEOUT_SECONDS, retry_handlers=retry_handlers()
    )
