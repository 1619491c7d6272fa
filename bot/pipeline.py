"""The moderation pipeline: durable intake, workers, verdicts, effects, cases.

A message is decided exactly once: intake is idempotent on (platform, server, message),
the case and the queue item's state change commit together, and an effect's intent is
written before it runs, so a crash never runs it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from cachetools import TTLCache
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from bot import effect_runner
from bot.classifier import ModelUnavailable
from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectOutcome,
    EffectRecord,
    Message,
    ServerSettings,
    utcnow,
)
from bot.effects import review_flag
from bot.judging import Judge, Judgement
from bot.platforms import PlatformRouter
from bot.ports import Classifier, EffectSink
from bot.raids import FlagUpdates
from bot.store.ports import LivePolicy, ModerationStore, QueueItem

log = logging.getLogger(__name__)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# How long a server's policies and settings are cached: changes made by another process
# (the CLI) show up within this time; changes made through this process at once.
CONFIG_TTL_SECONDS = 5.0
# Unexpected failures of one item before it is decided as "needs human review".
MAX_INTERNAL_FAILURES = 3
MAX_RECENT_PER_CHANNEL = 20
# Servers whose settings and policies are cached at once; the least recently used go first.
MAX_CACHED_SERVERS = 10_000

ServerKey = tuple[str, str]  # (platform, server id)


def new_case_id() -> str:
    """Short enough to type in a command, 60 random bits so two processes never collide."""
    value = secrets.randbits(60)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(55, -1, -5))


def skip_reason(message: Message, settings: ServerSettings, policies: Sequence[LivePolicy]) -> str | None:
    """Why a message needs no model call, or None if it does."""
    if message.author.is_bot:
        return "author is a bot"
    # A thread is exempt when its parent channel is: exemptions name channels, not threads.
    if message.scope_channel_id in settings.exempt_channel_ids or message.channel_id in settings.exempt_channel_ids:
        return "channel is exempt"
    exempt_roles = set(message.author.roles) & set(settings.exempt_role_ids)
    if exempt_roles:
        return "author has an exempt role"
    if not message.text.strip():
        return "attachments only: not classified" if message.attachments else "empty message"
    if not any(lp.enabled for lp in policies):
        return "no active policy for this server"
    return None


CaseObserver = Callable[[Case], Awaitable[None] | None]


class ModerationPipeline:
    def __init__(
        self,
        store: ModerationStore,
        classifier: Classifier,
        sinks: Mapping[str, EffectSink] | PlatformRouter,
        *,
        workers: int = 4,
        now: Callable[[], datetime] = utcnow,
        unavailable_backoff: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.sinks = PlatformRouter.of(sinks)
        self.now = now
        self.observers: list[CaseObserver] = []
        self._worker_count = workers
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        # Queue ids waiting or being decided in this process: an item is never queued twice,
        # whether submit() or start() (recovery) saw it first.
        self._queued: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._recent: dict[tuple[str, str, str], deque[Message]] = {}
        # What happens to one message's text: the model's view, repeats, raids (bot.judging).
        self.judge = Judge(classifier, flag_updates=FlagUpdates(store, self.sinks), now=now)
        self._settings_cache: TTLCache[ServerKey, ServerSettings] = TTLCache(MAX_CACHED_SERVERS, CONFIG_TTL_SECONDS)
        self._policy_cache: TTLCache[ServerKey, list[LivePolicy]] = TTLCache(MAX_CACHED_SERVERS, CONFIG_TTL_SECONDS)
        self._failures: dict[int, int] = {}
        self._backoff = unavailable_backoff
        self._intake_open = True

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Queue the work an earlier process left unfinished, first, then start the workers."""
        leftovers = await self.store.open_queue_items()
        for item in leftovers:
            if item.id not in self._queued:  # submitted already in this process: remembered then
                self._remember(item.message)
                self._put(item)
        if leftovers:
            log.info("resuming %d queued messages left by an earlier run", len(leftovers))
        await self._resume_decided_cases()
        self._workers = [
            asyncio.create_task(self._work(), name=f"modbot-worker-{i}") for i in range(self._worker_count)
        ]
        return len(leftovers)

    async def drain(self) -> None:
        """Wait until every queued message is decided and its effects carried out."""
        await self._queue.join()

    def close_intake(self) -> None:
        """Refuse new submissions from now on (the first step of a shutdown); queued work goes on."""
        self._intake_open = False

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        await self.judge.aclose()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------ intake

    async def submit(self, message: Message) -> bool:
        """Store the message durably and queue it. False if it was submitted before.

        Raises IntakeClosed once the app is shutting down: the platform should not
        acknowledge the message, so that it is delivered again after the restart.
        """
        if not self._intake_open:
            raise IntakeClosed("the bot is shutting down; the message was not accepted")
        queue_id = await self.store.enqueue(message)
        if queue_id is None:
            return False
        self._remember(message)
        self._put(QueueItem(queue_id, message, "pending", None))
        return True

    def _put(self, item: QueueItem) -> None:
        if item.id not in self._queued:
            self._queued.add(item.id)
            self._queue.put_nowait(item)

    def invalidate(self, platform: str, server_id: str) -> None:
        """Forget cached settings and policies of a server after a change."""
        self._settings_cache.pop((platform, server_id), None)
        self._policy_cache.pop((platform, server_id), None)

    def _remember(self, message: Message) -> None:
        key = (message.platform, message.server_id, message.channel_id)
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = deque(maxlen=MAX_RECENT_PER_CHANNEL)
        recent.append(message)

    def _context(self, message: Message, count: int) -> list[Message]:
        if count <= 0:
            return []
        recent = self._recent.get((message.platform, message.server_id, message.channel_id), ())
        earlier = [m for m in recent if m.sent_at < message.sent_at and m.message_id != message.message_id]
        return earlier[-count:]

    # ------------------------------------------------------------ configuration

    async def settings_for(self, message: Message) -> ServerSettings:
        key = (message.platform, message.server_id)
        cached = self._settings_cache.get(key)
        if cached is not None:
            return cached
        stored = await self.store.settings.get(*key)
        found = stored or ServerSettings(platform=message.platform, server_id=message.server_id)
        self._settings_cache[key] = found
        return found

    async def policies_for(self, platform: str, server_id: str) -> list[LivePolicy]:
        key = (platform, server_id)
        cached = self._policy_cache.get(key)
        if cached is not None:
            return cached
        found = await self.store.policies.live(platform, server_id)
        self._policy_cache[key] = found
        return found

    # ------------------------------------------------------------ workers

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            retry = False
            try:
                await self._process_while_model_away(item)
                self._failures.pop(item.id, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                try:
                    retry = await self._internal_failure(item, exc)
                except Exception:
                    # Even the fallback failed (the store is broken?): the item stays open in
                    # the database for the next start, and this worker lives on.
                    log.exception("queue item %d could not be recorded; it stays queued for a restart", item.id)
            finally:
                # Re-queued before task_done(), so drain() never sees a retry as finished.
                if retry:
                    self._queue.put_nowait(item)
                else:
                    self._queued.discard(item.id)
                self._queue.task_done()

    async def _process_while_model_away(self, item: QueueItem) -> None:
        """Process the item, waiting (with backoff) for as long as the model server is unreachable.

        The message stays queued in the database meanwhile; nothing is lost.
        """
        base, cap = self._backoff
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ModelUnavailable),
            wait=wait_random_exponential(multiplier=base, max=cap),
            before_sleep=self._log_model_away,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._process(item)

    def _log_model_away(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.error("%s; %d messages wait in the queue, retrying in %.0fs", exc, self._queue.qsize() + 1, delay)

    async def _internal_failure(self, item: QueueItem, exc: Exception) -> bool:
        """Log the failure; True to try the item again, False once it is settled."""
        count = self._failures.get(item.id, 0) + 1
        self._failures[item.id] = count
        log.exception("queue item %d failed (%d of %d)", item.id, count, MAX_INTERNAL_FAILURES, exc_info=exc)
        if count < MAX_INTERNAL_FAILURES:
            await asyncio.sleep(0.1 * count)
            return True
        if item.state == "acting":  # decided already; its effects wait for the next start
            return False
        # A message that keeps breaking the pipeline is decided once, and flagged for a human.
        reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
        case = Case(
            id=new_case_id(),
            message=item.message,
            status=CaseStatus.NEEDS_REVIEW,
            skipped_reason=reason,
            created_at=self.now(),
        )
        self.judge.forget(item.message)
        settings = await self.settings_for(item.message)
        await self._record_and_act(item, case, [review_flag(settings, reason)])
        return False

    async def _process(self, item: QueueItem) -> None:
        if item.state == "acting":
            await self._resume(item)
            return
        message = item.message
        settings = await self.settings_for(message)
        policies = [lp for lp in await self.policies_for(message.platform, message.server_id) if lp.enabled]
        reason = skip_reason(message, settings, policies)
        case_id = new_case_id()
        judgement = (
            Judgement.skipped(reason) if reason is not None else await self._judge(case_id, message, settings, policies)
        )
        case = Case(
            id=case_id,
            message=message,
            status=judgement.status,
            verdicts=judgement.verdicts,
            skipped_reason=judgement.skipped_reason,
            mode=settings.mode,
            created_at=self.now(),
            judging_notes=judgement.notes,
            joined_case_id=judgement.joined_case_id,
        )
        await self._record_and_act(item, case, judgement.effects)

    async def _record_and_act(self, item: QueueItem, case: Case, effects: Sequence[Effect]) -> None:
        plan = [(e, EffectOutcome.SHADOW if e.shadow else EffectOutcome.PENDING) for e in effects]
        await self.store.record_decision(item.id, case, plan)
        records = [
            EffectRecord(id=seq, case_id=case.id, effect=e, outcome=o) for seq, (e, o) in enumerate(plan, start=1)
        ]
        if records:
            records = await effect_runner.carry_out(self.store, self.sinks, case, records, finish_queue_id=item.id)
        settled = case.model_copy(update={"effects": tuple(records)})
        self.judge.settled(settled)
        await self._notify(settled)

    async def _resume(self, item: QueueItem) -> None:
        assert item.case_id is not None
        case = await self.store.cases.get(item.case_id)
        if case is None:  # cannot happen: the case and 'acting' commit together
            raise RuntimeError(f"queue item {item.id} is acting on missing case {item.case_id}")
        records = await effect_runner.resume(self.store, self.sinks, case, finish_queue_id=item.id)
        await self._notify(case.model_copy(update={"effects": tuple(records)}))

    async def _resume_decided_cases(self) -> None:
        """Effects a person asked for after the decision (a confirm, an appeal) and a crash cut short."""
        for case_id in await self.store.cases_with_unfinished_effects():
            case = await self.store.cases.get(case_id)
            if case is not None:
                await effect_runner.resume(self.store, self.sinks, case)

    async def _notify(self, case: Case) -> None:
        for observer in self.observers:
            result = observer(case)
            if result is not None:
                await result

    # ------------------------------------------------------------ judging

    async def _judge(
        self, case_id: str, message: Message, settings: ServerSettings, policies: list[LivePolicy]
    ) -> Judgement:
        context = self._context(message, settings.context_messages)
        return await self.judge.judge(case_id, message, settings, policies, context)


class IntakeClosed(RuntimeError):
    """The pipeline no longer accepts messages: the app is shutting down."""


__all__ = ["IntakeClosed", "ModerationPipeline", "new_case_id", "skip_reason"]
