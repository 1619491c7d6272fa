"""Socket Mode end to end: the real Bolt Socket Mode handler connected to the local Slack's websocket."""

from __future__ import annotations

import asyncio
import logging

from bot.domain import CaseStatus, EffectKind
from tests.fakes.slack_fake import APP_TOKEN
from tests.slack.conftest import MOD_CHANNEL, MakeWorkspace


async def test_an_envelope_is_acknowledged_and_the_flag_is_posted(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("socket")
    fake = ws.fake
    await asyncio.wait_for(fake.socket_connected.wait(), 5)
    [opened] = fake.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN

    event = fake.user_message("you idiot")
    ack = await fake.send_envelope("events_api", event)
    assert set(ack) == {"envelope_id"}
    await ws.settle()

    [case] = ws.cases_of("C0GENERAL", event["event"]["ts"])
    assert case.status is CaseStatus.OPEN
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == MOD_CHANNEL


async def test_a_retry_attempt_doubles_nothing(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("socket", effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    fake = ws.fake
    await asyncio.wait_for(fake.socket_connected.wait(), 5)
    event = fake.user_message("you idiot")
    await fake.send_envelope("events_api", event)
    for attempt in (1, 2):
        ack = await fake.send_envelope("events_api", event, retry_attempt=attempt, retry_reason="timeout")
        assert set(ack) == {"envelope_id"}
    await ws.settle()
    assert len(ws.cases) == 1 and len(fake.calls_to("chat.postMessage")) == 2


class LogWatch(logging.Handler):
    """Barrier on a log record: Socket Mode's handler logs when it sends no ack, and that is all it does."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_no_ack_when_the_message_could_not_be_stored(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("socket")
    fake = ws.fake
    await asyncio.wait_for(fake.socket_connected.wait(), 5)

    async def store_down(message: object) -> bool:
        raise OSError("database is locked")

    real_submit = ws.pipeline.submit
    ws.pipeline.submit = store_down  # type: ignore[method-assign]
    watch = LogWatch("Unsuccessful Bolt execution result (status: 500")
    bolt_logger = ws.adapter.app.logger
    bolt_logger.addHandler(watch)
    level = bolt_logger.level
    bolt_logger.setLevel(logging.INFO)  # the handler says it at INFO
    try:
        event = fake.user_message("you idiot")
        sent = asyncio.create_task(fake.send_envelope("events_api", event, envelope_id="env-1", timeout=30))
        await asyncio.wait_for(watch.seen.wait(), 5)
    finally:
        bolt_logger.removeHandler(watch)
        bolt_logger.setLevel(level)
    assert "env-1" not in fake.envelope_acks  # Slack will deliver the envelope again
    sent.cancel()

    ws.pipeline.submit = real_submit  # type: ignore[method-assign]
    ack = await fake.send_envelope("events_api", event, retry_attempt=1, retry_reason="timeout")
    assert set(ack) == {"envelope_id"}
    await ws.settle()
    assert len(ws.cases) == 1
