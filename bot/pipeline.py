"""The moderation pipeline: durable intake, the queue in the database, workers, verdicts, effects, cases.

A message is decided exactly once: intake is idempotent on (platform, server, message,
revision), the case and the queue item's state change commit together, and an effect's
intent is written before it runs, so a crash never runs it twice. The backlog lives in
the database, not in memory: workers read it a page at a time, and a stop leaves it there
for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from cachetools import TTLCache
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from bot import effect_runner
from bot.classifier import ClassificationRequest, ModelUnavailable
from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    Message,
    ServerSettings,
    Verdict,
    utcnow,
)
from bot.effects import review_flag
from bot.judging import Judge, Judgement
from bot.observability.logs import bound_ids
from bot.platforms import PlatformRouter
from bot.ports import Classifier, EffectSink
from bot.raids import FlagUpdates
from bot.sanitise import truncate
from bot.store.ports import (
    Deletion,
    IntakeOutcome,
    LivePolicy,
    ModerationStore,
    QueueBacklog,
    QueueItem,
    WorkItem,
    WorkKind,
)

log = logging.getLogger(__name__)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# How long a server's policies and settings are cached: changes made by another process
# (the CLI) show up within this time; changes made through this process at once.
CONFIG_TTL_SECONDS = 5.0
# Unexpected failures of one item before it is decided as "needs human review".
MAX_INTERNAL_FAILURES = 3
# Servers whose settings and policies are cached at once; the least recently used go first.
MAX_CACHED_SERVERS = 10_000

# Queued messages read from the store at once: memory holds at most this many plus what the
# workers hold, however long the backlog. Interactive work is read a few items at a time.
PAGE_SIZE = 64
WORK_PAGE_SIZE = 16
# Idle workers look at the store this often: held revisions come due, and another process
# (an appeal filed from the command line) may have queued work.
IDLE_POLL_SECONDS = 1.0
DRAIN_POLL_SECONDS = 0.05
# The queue's depth and age, read from the store at most this often (metrics, logs).
STATS_SECONDS = 1.0
# A stop cancels model calls at once; effects under way get this long to finish.
STOP_GRACE_SECONDS = 5.0

# The channel context the model sees: the last messages of each channel, a bounded number
# of channels, forgotten after an hour of quiet; long texts cut (context, not judged).
MAX_RECENT_PER_CHANNEL = 20
CONTEXT_CHANNELS = 4096
CONTEXT_TTL_SECONDS = 3600.0
CONTEXT_TEXT_CHARS = 1000
# Authors and messages whose edits are counted (EditLimits), the least recent forgotten first.
MAX_TRACKED_AUTHORS = 100_000

# Storage stays proportionate: the model's reasoning about a clean message is kept a day
# (to answer "why was this not flagged?"), then cleared; violations and reviewed cases keep it.
CLEAN_REASONING_KEPT = timedelta(hours=24)
UPKEEP_SECONDS = 600.0
UPKEEP_BATCH = 1000
UPKEEP_VACUUM_PAGES = 2048
UPKEEP_VACUUM_ROUNDS = 8

# What a flag post is told when the message under it changes.
EDITED_FLAG = Effect(kind=EffectKind.UPDATE_FLAG, reason="edited by the author")
DELETED_FLAG = Effect(kind=EffectKind.UPDATE_FLAG, reason="deleted by the author")

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


@dataclass(frozen=True)
class EditLimits:
    """How fast an author's edits are judged as they come; faster ones wait for the edits to stop.

    Editing one message a hundred times must not be a hundred model calls. Within the
    limit, each edit is judged at once. Past it, a new revision is held `settle_seconds`;
    a newer revision of the same message supersedes it, so only the latest is judged, once
    the author stops. A message is never held longer than `max_hold_seconds` after its
    first held revision: editing every few seconds forever does not keep abuse unjudged.
    """

    per_author_per_minute: int = 6
    settle_seconds: float = 30.0
    max_hold_seconds: float = 300.0


class WorkHandler(Protocol):
    """Carries out one kind of interactive work (bootstrap registers the appeals' and previews')."""

    async def run(self, item: WorkItem) -> None:
        """Do the work; ModelUnavailable keeps it queued until the model answers again."""
        ...

    async def give_up(self, item: WorkItem, problem: str) -> None:
        """It failed MAX_INTERNAL_FAILURES times: tell whoever waits for it."""
        ...


Job = QueueItem | WorkItem


class _Phase(Enum):
    IDLE = "idle"
    JUDGING = "judging"  # a stop cancels it: nothing is recorded, the item stays queued
    ACTING = "acting"  # carrying out effects: a stop lets it finish, within STOP_GRACE_SECONDS


class ModerationPipeline:
    """Intake, the queue in the database, and the workers that judge and act.

    Memory holds at most a page of the queue plus what the workers hold, however long the
    backlog: workers read waiting revisions from the store a page at a time, oldest first.
    Interactive work (appeal second opinions, previews) goes first, with one worker kept
    for it; its model calls never wait behind a queue of bulk calls either (the pipeline
    keeps at most `model_slots` of those in flight).
    """

    def __init__(
        self,
        store: ModerationStore,
        classifier: Classifier,
        sinks: Mapping[str, EffectSink] | PlatformRouter,
        *,
        workers: int = 4,
        now: Callable[[], datetime] = utcnow,
        unavailable_backoff: tuple[float, float] = (1.0, 60.0),
        model_slots: int | None = None,
        edit_limits: EditLimits = EditLimits(),
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        # The model as the bulk of messages uses it: at most `model_slots` calls in flight, so
        # that an interactive call (a second opinion) finds at most that many ahead of it.
        self.model = classifier
        self.classifier: Classifier = _Bounded(classifier, model_slots) if model_slots else classifier
        self.sinks = PlatformRouter.of(sinks)
        self.now = now
        self.observers: list[CaseObserver] = []
        self.edit_limits = edit_limits
        self._worker_count = workers
        self._workers: dict[asyncio.Task[None], _Phase] = {}
        # How long to wait between tries while the model is unreachable (exponential, jittered).
        self.unavailable_backoff = unavailable_backoff
        self._intake_open = True
        self._stopping = False
        # What memory holds of the queue: one page of messages, the interactive work found,
        # and the ids of everything taken from the store and not finished (never read twice).
        self._bulk: deque[QueueItem] = deque()
        self._interactive: deque[WorkItem] = deque()
        self._held_messages: set[int] = set()
        self._held_work: set[int] = set()
        self._bulk_running = 0
        self._work_running: Counter[WorkKind] = Counter()
        # Whether the store may hold waiting messages memory lacks: the last page was full, or
        # something was queued since that did not go straight to memory (`_queued_since`).
        self._more_messages = True
        self._queued_since = 0
        # Ids handed over or finished while a page is being read (None when none is).
        self._taken_while_reading: set[int] | None = None
        self._more_work = True
        self._looked_at = 0.0  # monotonic time of the last look at the store for waiting work
        self._refill_lock = asyncio.Lock()
        # Idle workers, each waiting on its own future: a signal wakes one of them (a burst of
        # submissions must not wake every worker for every message). A signal that comes while
        # a worker is still looking is counted, so that it looks again rather than sleep.
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        self._looking = 0
        self._signals = 0
        self._handlers: dict[WorkKind, WorkHandler] = {}
        self._stats = QueueBacklog(0, None)
        self._stats_at = 0.0
        self._failures: dict[tuple[str, int], int] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._upkeep: asyncio.Task[None] | None = None
        # Recent messages per channel, the context the model sees: bounded, and forgotten
        # when a channel is quiet.
        self._recent: TTLCache[tuple[str, str, str], deque[Message]] = TTLCache(
            CONTEXT_CHANNELS, CONTEXT_TTL_SECONDS, timer=timer
        )
        # What happens to one message's text: the model's view, repeats, raids (bot.judging).
        # It calls the model as the bulk does, through the bound above.
        self.judge = Judge(self.classifier, flag_updates=FlagUpdates(store, self.sinks), now=now)
        self._settings_cache: TTLCache[ServerKey, ServerSettings] = TTLCache(MAX_CACHED_SERVERS, CONFIG_TTL_SECONDS)
        self._policy_cache: TTLCache[ServerKey, list[LivePolicy]] = TTLCache(MAX_CACHED_SERVERS, CONFIG_TTL_SECONDS)
        # Edits by author (platform, server, author) in the last minute, and since when a
        # message's revisions are held.
        # A plain dict: looked up for every message, it holds only authors who edited lately.
        self._edits: dict[tuple[str, str, str], deque[datetime]] = {}
        self._held_since: TTLCache[tuple[str, str, str], datetime] = TTLCache(
            MAX_TRACKED_AUTHORS, edit_limits.max_hold_seconds, timer=timer
        )

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Finish what an earlier process left, then start the workers; returns how much waits in the queue."""
        self._stopping = False
        await self._refresh_stats(force=True)
        waiting = self._stats.depth
        if waiting:
            log.info("resuming %d queued messages left by an earlier run", waiting)
        await self._resume_decided_cases()
        self._more_messages = self._more_work = True
        self._workers = {
            asyncio.create_task(self._work(), name=f"modbot-worker-{i}"): _Phase.IDLE for i in range(self._worker_count)
        }
        self._upkeep = asyncio.create_task(self._keep_storage(), name="modbot-storage-upkeep")
        return waiting

    async def drain(self) -> None:
        """Wait until every accepted message is decided and its effects done, and the interactive work too.

        Held revisions count: it returns once they have come due and been judged.
        """
        while True:
            if self._idle():
                stats = self._stats = await self.store.queue_backlog()
                if stats.depth == 0 and not await self.store.work.waiting((), 1) and self._idle():
                    return
                self.wake()
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    def close_intake(self) -> None:
        """Refuse new submissions from now on (the first step of a shutdown); queued work goes on."""
        self._intake_open = False

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop the workers at once, without draining: what was accepted stays queued for the next start.

        A worker waiting for the model is cancelled (nothing of its item is recorded yet); one
        carrying out effects gets `grace_seconds` to finish, so that a stop rarely leaves an
        effect that may or may not have happened.
        """
        self._stopping = True
        self._signal(everyone=True)
        acting = [task for task, phase in self._workers.items() if phase is _Phase.ACTING]
        for task, phase in self._workers.items():
            if phase is not _Phase.ACTING:
                task.cancel()
        if acting:
            await asyncio.wait(acting, timeout=grace_seconds)
        others = [*self._workers, *self._background, *([self._upkeep] if self._upkeep else [])]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self._workers = {}
        self._background.clear()
        self._upkeep = None
        self._bulk.clear()
        self._interactive.clear()
        self._held_messages.clear()
        self._held_work.clear()
        self._bulk_running = 0
        self._work_running.clear()
        await self.judge.aclose()

    def wake(self) -> None:
        """Work was queued in this process (an appeal, a preview): an idle worker looks at the store again."""
        self._more_messages = self._more_work = True
        self._signal()

    def _signal(self, everyone: bool = False) -> None:
        """Wake one idle worker (or all); under load none is idle, and nothing is signalled."""
        while self._idle_workers:
            waiter = self._idle_workers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return
        if self._looking and not everyone:
            self._signals = min(self._signals + 1, self._looking)

    def register_work(self, kind: WorkKind, handler: WorkHandler) -> None:
        self._handlers[kind] = handler

    @property
    def running(self) -> bool:
        """Workers are started (between start() and stop())."""
        return bool(self._workers)

    @property
    def held_in_memory(self) -> int:
        """Queued messages this process holds in memory (read ahead, or being worked on): bounded."""
        return len(self._held_messages)

    @property
    def backlog(self) -> int:
        """Revisions waiting (as of the last look at the store, at most a second old under load)."""
        return self._stats.depth

    def oldest_age_seconds(self) -> float:
        oldest = self._stats.oldest_enqueued_at
        return max(0.0, (self.now() - oldest).total_seconds()) if oldest else 0.0

    # ------------------------------------------------------------ intake

    async def submit(self, message: Message) -> bool:
        """Store the message durably and queue it. False if this revision was seen before.

        A message seen before with other text is an edit: a new revision, judged again
        (bot.store.intake). Raises IntakeClosed once the app is shutting down: the platform
        should not acknowledge the message, so that it is delivered again after the restart.
        """
        if not self._intake_open:
            raise IntakeClosed("the bot is shutting down; the message was not accepted")
        now = self.now()
        hold_until = self._hold_until(message, now)
        taken = await self.store.intake(message, hold_until=hold_until, flag_update=EDITED_FLAG)
        if taken.revision is not None and taken.revision > 1 and taken.outcome is not IntakeOutcome.STALE:
            self._count_edit(message, now, hold_until if taken.outcome is IntakeOutcome.HELD else None)
        if taken.outcome is IntakeOutcome.QUEUED and taken.queue_id is not None and taken.revision is not None:
            self._hand_over(QueueItem(taken.queue_id, message, "pending", None, taken.revision, now))
        if taken.noted_cases:
            self._in_background(self._update_flags(taken.noted_cases))
        return taken.accepted

    async def message_deleted(self, platform: str, server_id: str, message_id: str) -> Deletion:
        """The author deleted the message: its queued revisions are cancelled and its text purged.

        Cases flagged about it keep their text as evidence (retention removes it on the
        server's schedule) and note the deletion; the flag post of one awaiting a moderator
        is updated. Later deliveries of the message are refused.
        """
        key = (platform, server_id, message_id)
        deletion = await self.store.message_deleted(*key, self.now(), flag_update=DELETED_FLAG)
        self._forget_buffered(lambda item: item.message.key == key)
        for recent in self._recent.values():
            for m in [m for m in recent if m.key == key]:
                recent.remove(m)
        if deletion.noted_cases:
            self._in_background(self._update_flags(deletion.noted_cases))
        await self._refresh_stats(force=True)
        return deletion

    async def server_removed(self, platform: str, server_id: str) -> int:
        """The bot left the server (or the workspace uninstalled it): its queued work is dropped.

        Its cases and settings stay, and retention purges their text on the server's
        schedule, as for any other server. Returns how many queued items were dropped.
        """
        dropped = await self.store.server_removed(platform, server_id, self.now())
        self._forget_buffered(lambda item: (item.message.platform, item.message.server_id) == (platform, server_id))
        self._interactive = deque(w for w in self._interactive if (w.platform, w.server_id) != (platform, server_id))
        for key in [k for k in self._recent if k[:2] == (platform, server_id)]:
            self._recent.pop(key, None)
        self.invalidate(platform, server_id)
        await self._refresh_stats(force=True)
        log.info("server removed: %d queued items dropped", dropped)
        return dropped

    def invalidate(self, platform: str, server_id: str) -> None:
        """Forget cached settings and policies of a server after a change."""
        self._settings_cache.pop((platform, server_id), None)
        self._policy_cache.pop((platform, server_id), None)

    def _hold_until(self, message: Message, now: datetime) -> datetime | None:
        """When a new revision of this message may be judged, if its author edits faster than the limit."""
        limits = self.edit_limits
        author = (message.platform, message.server_id, message.author.id)
        recent = self._edits.get(author) if self._edits else None
        if recent is None:
            return None
        while recent and now - recent[0] > timedelta(minutes=1):
            recent.popleft()
        if not recent:
            del self._edits[author]
            return None
        if len(recent) < limits.per_author_per_minute:
            return None
        first = self._held_since.get(message.key, now)
        return min(now + timedelta(seconds=limits.settle_seconds), first + timedelta(seconds=limits.max_hold_seconds))

    def _count_edit(self, message: Message, now: datetime, held_until: datetime | None) -> None:
        author = (message.platform, message.server_id, message.author.id)
        recent = self._edits.get(author)
        if recent is None:
            if len(self._edits) >= MAX_TRACKED_AUTHORS:  # bounded: the longest-known editor goes first
                del self._edits[next(iter(self._edits))]
            recent = self._edits[author] = deque(maxlen=self.edit_limits.per_author_per_minute + 1)
        recent.append(now)
        if held_until is None:
            self._held_since.pop(message.key, None)
        elif held_until <= now:
            # Held as long as allowed: this revision is judged now, and the next hold starts
            # afresh, so that an endless editor is judged once per max_hold_seconds.
            self._held_since[message.key] = now
        else:
            self._held_since.setdefault(message.key, now)

    def _remember(self, message: Message) -> None:
        key = (message.platform, message.server_id, message.channel_id)
        recent = self._recent.get(key)
        if recent is None:
            recent = deque(maxlen=MAX_RECENT_PER_CHANNEL)
        kept = (
            message
            if len(message.text) <= CONTEXT_TEXT_CHARS
            else message.model_copy(update={"text": truncate(message.text, CONTEXT_TEXT_CHARS)})
        )
        earlier = next((i for i, m in enumerate(recent) if m.message_id == message.message_id), None)
        if earlier is None:
            recent.append(kept)
        else:
            recent[earlier] = kept  # an edit: the context shows the message as it reads now
        self._recent[key] = recent

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

    # ------------------------------------------------------------ taking work

    async def _next_job(self) -> Job | None:
        """The next thing to do: interactive work first, then the oldest message; None once stopping."""
        self._looking += 1
        try:
            while not self._stopping:
                job = self._take()
                if job is None:
                    async with self._refill_lock:
                        job = self._take()
                        if job is None and not self._stopping:
                            await self._refill()
                            job = self._take()
                if job is not None:
                    return job
                if self._signals:  # signalled while looking: look again rather than sleep
                    self._signals -= 1
                    continue
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._idle_workers.append(waiter)
                try:
                    await asyncio.wait_for(waiter, IDLE_POLL_SECONDS)
                except TimeoutError:
                    pass
                finally:
                    if waiter in self._idle_workers:
                        self._idle_workers.remove(waiter)
            return None
        finally:
            self._looking -= 1

    def _take(self) -> Job | None:
        for i, work in enumerate(self._interactive):
            if self._lane_free(work.kind):
                del self._interactive[i]
                self._work_running[work.kind] += 1
                return work
        # One worker stays free for interactive work, so that a second opinion starts at once
        # however long the backlog.
        reserved = 1 if self._worker_count > 1 else 0
        if self._bulk and self._bulk_running < self._worker_count - reserved:
            self._bulk_running += 1
            return self._bulk.popleft()
        return None

    def _lane_free(self, kind: WorkKind) -> bool:
        # A preview is long (up to a thousand model calls): one at a time, so that previews
        # never take more than a worker from second opinions and live traffic.
        if kind is WorkKind.PREVIEW:
            return self._work_running[kind] < 1
        return sum(self._work_running.values()) < max(1, self._worker_count - 1)

    async def _refill(self) -> None:
        """Read from the store what memory lacks: waiting interactive work, and a page of messages."""
        polled = time.monotonic() - self._looked_at >= IDLE_POLL_SECONDS
        if polled:  # held revisions come due; another process (the CLI) may have queued work
            self._looked_at = time.monotonic()
            self._more_messages = self._more_work = True
        if self._more_work and len(self._interactive) < WORK_PAGE_SIZE:
            found = await self.store.work.waiting(self._held_work, WORK_PAGE_SIZE - len(self._interactive))
            self._more_work = False
            for work in found:
                self._held_work.add(work.id)
                self._interactive.append(work)
        if self._more_messages and len(self._bulk) < PAGE_SIZE // 2:
            wanted = PAGE_SIZE - len(self._bulk)
            queued_before = self._queued_since
            self._taken_while_reading = set()
            try:
                page = await self.store.waiting_page(self.now(), set(self._held_messages), wanted)
                taken = self._taken_while_reading
            finally:
                self._taken_while_reading = None
            # Caught up only if the page was short and nothing was queued to the store meanwhile
            # (its commit may have missed the page's read).
            self._more_messages = len(page) == wanted or self._queued_since != queued_before
            for item in page:
                # Handed over while the page was read, or even decided already (the read's
                # snapshot may predate the decision): never taken twice.
                if item.id in self._held_messages or item.id in taken:
                    continue
                self._held_messages.add(item.id)
                self._remember(item.message)
                self._bulk.append(item)
            await self._refresh_stats()

    def _hand_over(self, item: QueueItem) -> None:
        """A message just queued goes straight to memory when memory has every older one and room.

        Otherwise it waits in the store for a page: memory stays bounded, and the oldest is
        still taken first. Either way one idle worker is woken.
        """
        caught_up = self.running and not self._stopping and not self._more_messages
        if caught_up and len(self._bulk) < PAGE_SIZE:
            if self._taken_while_reading is not None:
                self._taken_while_reading.add(item.id)
            self._held_messages.add(item.id)
            self._remember(item.message)
            self._bulk.append(item)
        else:
            self._more_messages = True
            self._queued_since += 1
        self._signal()

    def _forget_buffered(self, matches: Callable[[QueueItem], bool]) -> None:
        dropped = [item for item in self._bulk if matches(item)]
        if dropped:
            self._bulk = deque(item for item in self._bulk if not matches(item))
            self._held_messages.difference_update(item.id for item in dropped)

    def _finished(self, job: Job) -> None:
        if isinstance(job, QueueItem):
            if self._taken_while_reading is not None:
                self._taken_while_reading.add(job.id)
            self._held_messages.discard(job.id)
            self._bulk_running -= 1
        else:
            self._held_work.discard(job.id)
            self._work_running[job.kind] -= 1
        self._signal()  # a lane or the bulk's share of workers is free again

    async def _refresh_stats(self, *, force: bool = False) -> None:
        if force or time.monotonic() - self._stats_at >= STATS_SECONDS:
            self._stats_at = time.monotonic()
            self._stats = await self.store.queue_backlog()

    # ------------------------------------------------------------ workers

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while (job := await self._next_job()) is not None:
            try:
                if isinstance(job, QueueItem):
                    await self._run_message(job)
                else:
                    await self._run_work(job)
            finally:
                self._workers[me] = _Phase.IDLE
                self._finished(job)

    def _phase(self, phase: _Phase) -> None:
        task = asyncio.current_task()
        if task in self._workers:
            self._workers[task] = phase

    async def _run_message(self, item: QueueItem) -> None:
        m = item.message
        with bound_ids(
            platform=m.platform,
            server_id=m.server_id,
            channel_id=m.channel_id,
            message_id=m.message_id,
            queue_id=item.id,
        ):
            if item.superseded:
                await self.store.supersede(item.id)  # a newer revision came: only the latest is judged
                return
            await self._with_retries(("message", item.id), lambda: self._process(item), self._give_up_message(item))

    async def _run_work(self, work: WorkItem) -> None:
        with bound_ids(platform=work.platform, server_id=work.server_id):
            handler = self._handlers.get(work.kind)
            if handler is None:
                log.error("no handler for %s work in this process; it stays queued", work.kind.value)
                return

            async def run() -> None:
                self._phase(_Phase.JUDGING)
                await handler.run(work)
                await self.store.work.finish(work.id, "done", "", self.now())

            async def give_up(exc: Exception) -> None:
                problem = f"{type(exc).__name__}: {exc}"[:300]
                await self.store.work.finish(work.id, "failed", problem, self.now())
                await handler.give_up(work, problem)

            await self._with_retries(("work", work.id), run, give_up)

    async def _with_retries(
        self,
        key: tuple[str, int],
        attempt: Callable[[], Awaitable[None]],
        give_up: Callable[[Exception], Awaitable[None]],
    ) -> None:
        """Run the job, waiting out a model outage; an unexpected failure is tried again, then given up."""
        while True:
            try:
                await self._while_model_away(attempt)
                self._failures.pop(key, None)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = self._failures[key] = self._failures.get(key, 0) + 1
                log.exception("%s %d failed (%d of %d)", key[0], key[1], count, MAX_INTERNAL_FAILURES, exc_info=exc)
                if count < MAX_INTERNAL_FAILURES:
                    await asyncio.sleep(0.1 * count)
                    continue
                self._failures.pop(key, None)
                try:
                    await give_up(exc)
                except Exception:
                    # Even the fallback failed (the store is broken?): the item stays in the
                    # database for the next start, and this worker lives on.
                    log.exception("%s %d could not be recorded; it stays queued for a restart", key[0], key[1])
                return

    async def _while_model_away(self, attempt: Callable[[], Awaitable[None]]) -> None:
        """Run the attempt, waiting (with backoff) for as long as the model server is unreachable.

        The work stays queued in the database meanwhile; nothing is lost, and a stop cancels the wait.
        """
        base, cap = self.unavailable_backoff
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ModelUnavailable),
            wait=wait_random_exponential(multiplier=base, max=cap),
            before_sleep=self._log_model_away,
            reraise=True,
        )
        async for tried in retrying:
            with tried:
                await attempt()

    def _log_model_away(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.error("%s; %d messages wait in the queue, retrying in %.0fs", exc, self._stats.depth, delay)

    def _give_up_message(self, item: QueueItem) -> Callable[[Exception], Awaitable[None]]:
        async def give_up(exc: Exception) -> None:
            if item.state == "acting":  # decided already; its effects wait for the next start
                return
            # A message that keeps breaking the pipeline is decided once, and flagged for a human.
            reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
            case = Case(
                id=new_case_id(),
                message=item.message,
                status=CaseStatus.NEEDS_REVIEW,
                skipped_reason=reason,
                created_at=self.now(),
                revision=item.revision,
            )
            self.judge.forget(item.message)
            settings = await self.settings_for(item.message)
            await self._record_and_act(item, case, [review_flag(settings, reason)])

        return give_up

    async def _process(self, item: QueueItem) -> None:
        if item.state == "acting":
            await self._resume(item)
            return
        self._phase(_Phase.JUDGING)
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
            revision=item.revision,
        )
        await self._record_and_act(item, case, judgement.effects)

    async def _record_and_act(self, item: QueueItem, case: Case, effects: Sequence[Effect]) -> None:
        plan = [(e, EffectOutcome.SHADOW if e.shadow else EffectOutcome.PENDING) for e in effects]
        self._phase(_Phase.ACTING)
        if not await self.store.record_decision(item.id, case, plan):
            # Cancelled meanwhile (deleted by its author, or the bot left the server), or
            # recorded by an earlier attempt whose effects a later page resumes.
            log.info("queue item %d is no longer waiting: this judgement is dropped", item.id)
            self.judge.forget(item.message)
            return
        with bound_ids(case_id=case.id):
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
        self._phase(_Phase.ACTING)
        with bound_ids(case_id=item.case_id):
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
                with bound_ids(case_id=case_id):
                    await effect_runner.resume(self.store, self.sinks, case)

    async def _update_flags(self, case_ids: Sequence[str]) -> None:
        """Carry out the flag updates an edit or a deletion recorded (the effects job is the safety net)."""
        for case_id in case_ids:
            case = await self.store.cases.get(case_id)
            if case is not None:
                with bound_ids(case_id=case_id):
                    await effect_runner.carry_out(self.store, self.sinks, case, case.effects)

    def _in_background(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background work failed; the effects job tries again")

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _notify(self, case: Case) -> None:
        for observer in self.observers:
            result = observer(case)
            if result is not None:
                await result

    async def _keep_storage(self) -> None:
        """Keep storage proportionate: clean verdicts' reasoning goes after a day; free pages go back."""
        while True:
            try:
                cutoff = self.now() - CLEAN_REASONING_KEPT
                # A batch at a time, so that the workers' writes get in between.
                cleared = UPKEEP_BATCH
                while cleared == UPKEEP_BATCH:
                    cleared = await self.store.forget_clean_reasoning(cutoff, UPKEEP_BATCH)
                freed = 0
                for _ in range(UPKEEP_VACUUM_ROUNDS):
                    pages = await self.store.reclaim_space(UPKEEP_VACUUM_PAGES)
                    freed += pages
                    if pages < UPKEEP_VACUUM_PAGES:
                        break
                if freed:
                    log.info("gave %d free database pages back to the file system", freed)
                await self._refresh_stats(force=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("storage upkeep failed; it runs again later")
            await asyncio.sleep(UPKEEP_SECONDS)

    def _idle(self) -> bool:
        return (
            not self._bulk
            and not self._interactive
            and self._bulk_running == 0
            and not any(self._work_running.values())
            and not self._background
        )

    # ------------------------------------------------------------ judging

    async def _judge(
        self, case_id: str, message: Message, settings: ServerSettings, policies: list[LivePolicy]
    ) -> Judgement:
        context = self._context(message, settings.context_messages)
        return await self.judge.judge(case_id, message, settings, policies, context)


class _Bounded:
    """A classifier with at most `slots` calls of its callers in flight; the rest wait here, in order."""

    def __init__(self, inner: Classifier, slots: int) -> None:
        self.inner = inner
        self._slots = asyncio.Semaphore(slots)

    async def classify(self, request: ClassificationRequest) -> Verdict:
        async with self._slots:
            return await self.inner.classify(request)


class IntakeClosed(RuntimeError):
    """The pipeline no longer accepts messages: the app is shutting down."""


__all__ = [
    "EditLimits",
    "IntakeClosed",
    "ModerationPipeline",
    "WorkHandler",
    "new_case_id",
    "skip_reason",
]
