"""Structured logs: one configuration for every logger, ids bound per message, secrets redacted.

The code logs through the standard library (`logging.getLogger(__name__)`) or structlog
(`structlog.get_logger()`); both end in the same handler. Every line carries a UTC
timestamp, the level, the logger's name, the event, and whatever ids are bound in the
current context (`bound_ids`). `MODBOT_LOG_FORMAT=json` renders one JSON object per
line, anything else a readable line.

What a line may hold: ids, counts, outcomes, names of policies and rules. Never the text
of a message, a statement or a model's answer at INFO; the code keeps to that, and the
test of a full run checks it. Secrets are a second line of defence here: values of the
environment's token, secret and key variables (and the files their `*_FILE` variables
name), and strings shaped like Discord, Slack or OpenAI credentials, are replaced by
`[redacted]` wherever they appear, tracebacks included.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.settings import LogFormat

if TYPE_CHECKING:
    from bot.domain import Case

REDACTED = "[redacted]"

# Libraries that log every request at INFO: their lines say nothing an operator needs and
# can carry URLs. apscheduler logs each run of each job.
QUIET_LOGGERS = ("httpx", "httpcore", "aiosqlite", "apscheduler", "aiohttp.access", "openai")

# Credentials with a recognisable shape, wherever they come from.
CREDENTIAL_PATTERNS = (
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),  # Slack bot, user and legacy tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),  # Slack app-level (Socket Mode) tokens
    re.compile(r"\b[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"),  # Discord bot tokens
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style API keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),  # Authorization headers
)
# Environment variables whose values are secrets: DISCORD_TOKEN, SLACK_SIGNING_SECRET,
# OPENAI_API_KEY, ... Their *_FILE twins name a file holding the value.
SECRET_VARIABLE = re.compile(r"(TOKEN|SECRET|API_KEY|PASSWORD)$")
# Shorter values would redact ordinary words; real credentials are far longer.
MIN_SECRET_LENGTH = 8
MAX_SECRET_FILE_BYTES = 4096

ID_FIELDS = ("platform", "server_id", "channel_id", "message_id", "case_id", "queue_id", "appeal_id")

_HANDLER_MARK = "_modbot_log_handler"


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> set[str]:
    """The values of the secret variables in the environment, and of the files `*_FILE` names."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if SECRET_VARIABLE.search(name):
            found.add(value.strip())
        elif name.endswith("_FILE") and SECRET_VARIABLE.search(name.removesuffix("_FILE")):
            found.add(_read_secret_file(value))
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


def _read_secret_file(path: str) -> str:
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_SECRET_FILE_BYTES).strip()
    except OSError:
        return ""  # the adapter that needs the file reports it; logging must not fail here


class SecretRedactor:
    """A processor that replaces known secret values and credential-shaped strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in CREDENTIAL_PATTERNS:
            text = pattern.sub(REDACTED, text)
        return text

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            event_dict[key] = self._scrub(value)
        return event_dict

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.redact(f"{type(value).__name__}: {value}")
        return value


def _shared_processors() -> list[Processor]:
    """Steps for every line, from structlog or from the standard library alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]


LEADING_KEYS = ("timestamp", "level", "logger", "event")


def _leading_keys_first(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # The same order on every line, the way a person scans them; ids and details follow.
    ordered = {k: event_dict.pop(k) for k in LEADING_KEYS if k in event_dict}
    ordered.update(event_dict)
    return ordered


def _renderer(log_format: LogFormat, stream: TextIO) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer(sort_keys=False, ensure_ascii=False)
    colors = stream.isatty() and "NO_COLOR" not in os.environ
    # plain_traceback: structlog's default with rich installed prints each frame's local
    # variables, and those hold message texts and tokens.
    return structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)


def configure_logging(
    level: str = "INFO",
    log_format: LogFormat = "console",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] | None = None,
) -> None:
    """Send every log line, from any logger, through one handler on `stream` (stderr).

    `secrets` are redacted wherever they appear; by default they are read from the
    environment (`secrets_from_environment`). Calling this again replaces the handler it
    installed before, so tests and a CLI that configures twice never duplicate lines.
    """
    stream = sys.stderr if stream is None else stream
    redactor = SecretRedactor(secrets_from_environment() if secrets is None else secrets)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            # Tracebacks become text before redaction, so a token in an exception is caught.
            structlog.processors.format_exc_info,
            redactor,
            _leading_keys_first,
            _renderer(log_format, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Python's warnings (deprecations, unclosed resources) go through the same handler, so
    # a JSON log stays JSON on every line.
    logging.captureWarnings(True)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


@contextmanager
def bound_ids(
    *,
    platform: str | None = None,
    server_id: str | None = None,
    channel_id: str | None = None,
    message_id: str | None = None,
    case_id: str | None = None,
    queue_id: int | None = None,
    appeal_id: int | None = None,
) -> Iterator[None]:
    """Bind ids to every log line written inside the block, in this task and the tasks it starts.

    Only ids: the parameters are the closed list of what may be bound, so no one binds a
    message's text by accident. Blocks nest; an inner block adds to (or overrides) the
    outer one and restores it on exit. Tasks created inside copy the context, so the
    model calls a worker starts for a message log with that message's ids.

        with bound_ids(platform=m.platform, server_id=m.server_id, message_id=m.message_id, queue_id=item.id):
            ...
            with bound_ids(case_id=case.id):
                ...
    """
    given = {
        "platform": platform,
        "server_id": server_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "case_id": case_id,
        "queue_id": queue_id,
        "appeal_id": appeal_id,
    }
    # bind/reset by token rather than structlog's bound_contextvars, which reads the whole
    # context to restore it: a cost per model call and per effect that bench/observability.py
    # showed.
    tokens = structlog.contextvars.bind_contextvars(**{k: v for k, v in given.items() if v is not None})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def bound_case(case: Case) -> AbstractContextManager[None]:
    """`bound_ids` for everything done about one case: its message's ids and the case's."""
    message = case.message
    return bound_ids(
        platform=message.platform,
        server_id=message.server_id,
        channel_id=message.channel_id,
        message_id=message.message_id,
        case_id=case.id,
    )


def current_ids() -> dict[str, Any]:
    """The ids bound in this context (for tests and for code that passes them on)."""
    bound: MutableMapping[str, Any] = structlog.contextvars.get_contextvars()
    return {k: bound[k] for k in ID_FIELDS if k in bound}
