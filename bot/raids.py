"""Raids produce bounded output: repeats join the first flag, moderator DMs are rate-limited.

A raid of 4,000 near-repeats must not become 4,000 posts in the mod channel (Discord takes
about 5 messages per 5 seconds in a channel) and 4,000 DMs to every moderator.

- `RaidControl.bound` decides, when a case is judged, whether its flag joins an earlier
  case's flag (a repeat of the same flagged text within the server's repeat window) and
  whether its DM to moderators goes out, starts a pause, or is held back.
- `FlagUpdates` keeps the first case's post current as repeats join it, through UPDATE_FLAG
  (the count and the authors come from the store: `EffectContext.joins`): at most one edit
  per flag per interval, and always one after the last join.

Deletes, time-outs and the author's notice still apply to each message: only the posts and
DMs meant for moderators are collapsed. State is in memory: after a restart a raid's next
repeat posts a new flag, which the following ones join.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cachetools import TTLCache

from bot import effect_runner
from bot.domain import (
    Case,
    Effect,
    EffectKind,
    EffectOutcome,
    Message,
    ModeratorDmSummary,
    utcnow,
)
from bot.platforms import PlatformRouter
from bot.ports import EffectSink
from bot.store.ports import ModerationStore

log = logging.getLogger(__name__)

# Moderator DMs per server before a pause, and the pause: five DMs is already a lot on a
# phone; past that moderators need to know a raid is on, not each of its messages.
MODERATOR_DMS_PER_WINDOW = 5
MODERATOR_DM_WINDOW = timedelta(minutes=10)
# Edits of one flag post while repeats join it: a post that changes more often than this
# is unreadable, and Discord rate-limits edits in a channel like posts.
FLAG_UPDATE_INTERVAL_SECONDS = 10.0
# Flags that repeats may join, across servers; the oldest are forgotten first.
MAX_JOINABLE_FLAGS = 100_000
MAX_DM_SERVERS = 10_000
_SWEEP = 64

ServerKey = tuple[str, str]


@dataclass(frozen=True)
class FlagKey:
    """What makes two cases' flags the same flag.

    `kind` "violation" keys on the violation skeleton (a raid's variants share it); "review"
    keys on the exact normalised text (the same text the model could not judge). `policies`
    are the policies the case flags for: a repeat joins only a flag that already names all
    of its policies, so a joined flag never hides a policy.
    """

    kind: str
    key: str
    policies: frozenset[str]


@dataclass(frozen=True)
class Bounded:
    """A case's effects once raids are bounded, the flag it joined, and what to note on the case."""

    effects: tuple[Effect, ...]
    joined_case_id: str | None
    notes: tuple[str, ...]


@dataclass
class _Holder:
    case_id: str
    message_key: tuple[str, str, str]
    policies: frozenset[str]
    expires_at: datetime


@dataclass
class _DmBudget:
    sent: deque[datetime] = field(default_factory=deque)
    paused_until: datetime | None = None
    held: int = 0
    held_since: datetime | None = None


class RaidControl:
    """In-memory raid state of one process: which flags repeats may join, and each server's DM budget."""

    def __init__(
        self,
        now: Callable[[], datetime] = utcnow,
        *,
        dms_per_window: int = MODERATOR_DMS_PER_WINDOW,
        dm_window: timedelta = MODERATOR_DM_WINDOW,
        max_flags: int = MAX_JOINABLE_FLAGS,
    ) -> None:
        self._now = now
        self._dms_per_window = dms_per_window
        self._dm_window = dm_window
        self._max_flags = max_flags
        self._holders: dict[tuple[ServerKey, str, str], _Holder] = {}
        # A server's budget outlives its pause and the window after it, then may be dropped.
        self._dm_budgets: TTLCache[ServerKey, _DmBudget] = TTLCache(
            MAX_DM_SERVERS, 3 * dm_window.total_seconds(), timer=lambda: self._now().timestamp()
        )

    def bound(
        self,
        case_id: str,
        message: Message,
        flag: FlagKey | None,
        effects: tuple[Effect, ...],
        window_seconds: float,
    ) -> Bounded:
        """Join an earlier flag of the same text, or become the flag later repeats join; then the DM budget.

        `flag` is None for a case that flags nothing. A case joins only while the first
        case's flag is within the server's repeat window (0 turns joins off, as it turns
        off reuse), only with an enforced FLAG (shadow effects post nothing anyway), and
        never its own message (a message judged again after a failure).
        """
        now = self._now()
        server = (message.platform, message.server_id)
        posts = any(e.kind is EffectKind.FLAG and not e.shadow for e in effects)
        if flag is not None and posts and window_seconds > 0:
            slot = (server, flag.kind, flag.key)
            holder = self._holders.get(slot)
            if holder is not None and holder.expires_at <= now:
                holder = None
            if holder is not None and holder.message_key != message.key and flag.policies <= holder.policies:
                kept = tuple(e for e in effects if e.kind not in (EffectKind.FLAG, EffectKind.DM_MODERATORS))
                note = (
                    f"a repeat of a flagged text: joined the flag of case {holder.case_id} instead of posting its own"
                )
                return Bounded(kept, holder.case_id, (note,))
            if holder is None or holder.message_key == message.key:
                self._holders.pop(slot, None)  # re-inserted at the end: the dict stays in time order
                self._holders[slot] = _Holder(
                    case_id, message.key, flag.policies, now + timedelta(seconds=window_seconds)
                )
                self._sweep(now)
        return self._limit_dms(server, effects, now)

    def forget_message(self, message_key: tuple[str, str, str]) -> None:
        """The message's flag will never be posted (its case was not recorded as judged): repeats post their own."""
        for slot, holder in list(self._holders.items()):
            if holder.message_key == message_key:
                del self._holders[slot]

    def _limit_dms(self, server: ServerKey, effects: tuple[Effect, ...], now: datetime) -> Bounded:
        index = next((i for i, e in enumerate(effects) if e.kind is EffectKind.DM_MODERATORS and not e.shadow), None)
        if index is None:
            return Bounded(effects, None, ())
        budget = self._dm_budgets.get(server)
        if budget is None:
            budget = self._dm_budgets[server] = _DmBudget()
        if budget.paused_until is not None and now < budget.paused_until:
            budget.held += 1
            budget.held_since = budget.held_since or now
            kept = effects[:index] + effects[index + 1 :]
            note = f"moderator DM held back: DMs about new flags are paused until {budget.paused_until:%H:%M} UTC"
            return Bounded(kept, None, (note,))
        window = self._dm_window
        while budget.sent and now - budget.sent[0] >= window:
            budget.sent.popleft()
        summary: ModeratorDmSummary | None = None
        if budget.held:
            summary = self._summary(held_back=budget.held, held_since=budget.held_since)
            budget.held, budget.held_since = 0, None
        budget.paused_until = None
        notes: tuple[str, ...] = ()
        if len(budget.sent) >= self._dms_per_window:
            # This DM is the last before a pause, and says so: moderators learn a raid is on once.
            budget.paused_until = now + window
            summary = (summary or self._summary()).model_copy(update={"paused_until": budget.paused_until})
            notes = (f"moderator DMs paused until {budget.paused_until:%H:%M} UTC: too many flags at once",)
        budget.sent.append(now)
        if summary is None:
            return Bounded(effects, None, notes)
        dm = effects[index].model_copy(update={"dm_summary": summary})
        return Bounded((*effects[:index], dm, *effects[index + 1 :]), None, notes)

    def _summary(self, held_back: int = 0, held_since: datetime | None = None) -> ModeratorDmSummary:
        return ModeratorDmSummary(
            limit=self._dms_per_window,
            window_minutes=round(self._dm_window.total_seconds() / 60),
            held_back=held_back,
            held_since=held_since,
        )

    def _sweep(self, now: datetime) -> None:
        for slot in list(itertools.islice(self._holders, _SWEEP)):
            if self._holders[slot].expires_at > now and len(self._holders) <= self._max_flags:
                break
            del self._holders[slot]


@dataclass
class _FlagState:
    dirty: bool = False
    # The flag's own post was carried out since the last look: a look that found it not yet
    # posted must look again.
    posted: bool = False
    last_update: float = float("-inf")
    task: asyncio.Task[None] | None = None


class FlagUpdates:
    """Edits the first case's flag post as repeats join it (UPDATE_FLAG, through the effect runner).

    The first join is shown at once; later ones at most every `interval_seconds`, and the
    last is always shown (a trailing edit). Each edit is an effect recorded on the first
    case, carried out once like any other.
    """

    def __init__(
        self,
        store: ModerationStore,
        sinks: Mapping[str, EffectSink] | PlatformRouter,
        *,
        interval_seconds: float = FLAG_UPDATE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._sinks = PlatformRouter.of(sinks)
        self._interval = interval_seconds
        self._clock = clock
        self._sleep = sleep
        self._flags: dict[str, _FlagState] = {}

    def joined(self, flag_case_id: str) -> None:
        """A repeat joined this case's flag (and is recorded): show it on the post."""
        state = self._flags.setdefault(flag_case_id, _FlagState())
        state.dirty = True
        self._ensure(flag_case_id, state)

    def flag_posted(self, case_id: str) -> None:
        """This case's own effects were carried out: joins that arrived before its post can be shown now."""
        state = self._flags.get(case_id)
        if state is not None:
            state.posted = True
            if state.dirty:
                self._ensure(case_id, state)

    async def idle(self) -> None:
        """Wait until no edit is due (tests, benchmarks, a drain)."""
        while running := [s.task for s in self._flags.values() if s.task is not None and not s.task.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def aclose(self) -> None:
        tasks = [s.task for s in self._flags.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flags.clear()

    def _ensure(self, case_id: str, state: _FlagState) -> None:
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._keep_current(case_id, state), name=f"modbot-flag-{case_id}")
        self._forget_quiet_flags()

    async def _keep_current(self, case_id: str, state: _FlagState) -> None:
        try:
            while state.dirty:
                wait = state.last_update + self._interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                state.dirty, state.posted = False, False
                updated = await self._update(case_id)
                if updated is None:  # the flag is not posted yet: its own effects call flag_posted
                    state.dirty = True
                    if not state.posted:
                        return
                elif updated:
                    state.last_update = self._clock()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the flag of case %s could not be updated with its repeats", case_id)

    async def _update(self, case_id: str) -> bool | None:
        """Edit the post; None if the flag is not posted yet, False if there is nothing to edit."""
        case = await self._store.cases.get(case_id)
        if case is None:  # joined while the first case was still being recorded
            return None
        flag = next((r for r in case.effects if r.effect.kind is EffectKind.FLAG and not r.effect.shadow), None)
        if flag is not None and flag.outcome in (EffectOutcome.PENDING, EffectOutcome.STARTED):
            return None
        if flag is None or flag.reference is None:
            return False  # the post failed or was never made: the joins stay on record
        sink = self._sinks.get(case.message.platform)
        if sink is None or EffectKind.UPDATE_FLAG not in sink.supported_effects:
            return False
        effect = Effect(kind=EffectKind.UPDATE_FLAG, reason="repeats of the flagged text joined this flag")
        [record] = await self._store.effects.add_intents(case.id, [effect])
        current = case.model_copy(update={"effects": (*case.effects, record)})
        await effect_runner.carry_out(self._store, self._sinks, current, [record])
        return True

    def _forget_quiet_flags(self) -> None:
        # A flag with nothing due and no edit for an interval needs no memory: a later join
        # starts afresh (and is shown at once, which is what a new wave of a raid deserves).
        now = self._clock()
        for case_id in list(itertools.islice(self._flags, _SWEEP)):
            state = self._flags[case_id]
            if state.dirty or (state.task is not None and not state.task.done()):
                continue
            if now - state.last_update >= self._interval:
                del self._flags[case_id]


def flag_settled(updates: FlagUpdates, case: Case) -> None:
    """After a case's decision and effects: show it on the flag it joined, and its own joins on its post."""
    if case.joined_case_id is not None:
        updates.joined(case.joined_case_id)
    updates.flag_posted(case.id)


__all__ = [
    "FLAG_UPDATE_INTERVAL_SECONDS",
    "MODERATOR_DMS_PER_WINDOW",
    "MODERATOR_DM_WINDOW",
    "Bounded",
    "FlagKey",
    "FlagUpdates",
    "RaidControl",
    "flag_settled",
]
