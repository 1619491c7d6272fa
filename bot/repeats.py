"""The repeat memory: verdicts already given that may stand for another message, per policy.

Two keys (bot.text.keys), because the two mistakes cost differently:

- a verdict of any kind is reused under the **clean** key, exactly the normalised text the
  model read: a spelling the model never saw can never borrow another spelling's pass;
- a **violation** is also reused under the **violation** key, a skeleton that drops what
  raids vary (digits, punctuation, case, invisible characters, look-alikes): a wrong reuse
  there is a false flag that moderators review, never an evasion nobody sees.

Memory is per policy version, not per message: a message that violates policy A and is
clean for B reuses A's violation and asks the model about B again. Concurrent repeats wait
for the call in flight instead of making their own (a raid costs one call per text):
a waiter on the same clean key takes whatever that call gives; a waiter that only shares
the violation key takes it only if it is a violation, and otherwise asks the model itself.

The memory holds digests and verdicts, never message text, and is bounded in entries and time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.domain import Verdict, VerdictStatus
from bot.text import RepeatKeys

# (platform, server id, effort, policy name, policy version): a verdict stands only for the
# same policy version judged at the same effort in the same server.
PolicyScope = tuple[str, str, str, str, int]

# Remembered verdicts across all servers and policies, per map; the oldest go first past it.
MAX_REMEMBERED_VERDICTS = 100_000
# Entries looked at per write when sweeping expired ones: the cost per message stays constant.
_SWEEP = 64


@dataclass(frozen=True)
class Reuse:
    """A verdict given before that stands for this message, and why it may."""

    verdict: Verdict
    # True: another spelling's violation, reused under the violation key (a near-repeat).
    near_repeat: bool


@dataclass
class Flight:
    """A model call in flight for one policy and text, that repeats may wait for."""

    scope: PolicyScope
    keys: RepeatKeys
    clean: asyncio.Future[Verdict | None]
    # Registered only by the first call in flight for its violation key.
    violation: asyncio.Future[Verdict | None] | None


_Key = tuple[PolicyScope, str]


class RepeatMemory:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_REMEMBERED_VERDICTS) -> None:
        self._clock = clock
        self._max_entries = max_entries
        # key -> (expires at, verdict); dicts keep insertion order, so the oldest come first.
        self._by_clean: dict[_Key, tuple[float, Verdict]] = {}
        self._violations: dict[_Key, tuple[float, Verdict]] = {}
        self._clean_flights: dict[_Key, asyncio.Future[Verdict | None]] = {}
        self._violation_flights: dict[_Key, asyncio.Future[Verdict | None]] = {}

    def __len__(self) -> int:
        return len(self._by_clean) + len(self._violations)

    def recall(self, scope: PolicyScope, keys: RepeatKeys) -> Reuse | None:
        """A remembered verdict for this text: any under its clean key, else a violation under its violation key."""
        now = self._clock()
        hit = self._by_clean.get((scope, keys.clean))
        if hit is not None and hit[0] > now:
            return Reuse(hit[1], near_repeat=False)
        hit = self._violations.get((scope, keys.violation))
        if hit is not None and hit[0] > now:
            return Reuse(hit[1], near_repeat=keys.violation != keys.clean)
        return None

    async def recall_or_wait(self, scope: PolicyScope, keys: RepeatKeys) -> Reuse | None:
        """`recall`, or the result of a call in flight that may stand for this text; None: ask the model."""
        waited: set[int] = set()
        while True:
            found = self.recall(scope, keys)
            if found is not None:
                return found
            same_text = self._clean_flights.get((scope, keys.clean))
            if same_text is not None and id(same_text) not in waited:
                waited.add(id(same_text))
                # shield: a waiter cancelled at shutdown must not cancel the call others wait for.
                verdict = await asyncio.shield(same_text)
                if verdict is not None:
                    return Reuse(verdict, near_repeat=False)
                continue  # that call failed: look again, then ask the model ourselves
            near = self._violation_flights.get((scope, keys.violation))
            if near is not None and id(near) not in waited and keys.violation != keys.clean:
                waited.add(id(near))
                verdict = await asyncio.shield(near)
                if verdict is not None and verdict.violation and verdict.status is VerdictStatus.DECIDED:
                    return Reuse(verdict, near_repeat=True)
                continue  # its text was clean: this spelling needs its own look
            return None

    def begin(self, scope: PolicyScope, keys: RepeatKeys) -> Flight:
        loop = asyncio.get_running_loop()
        clean: asyncio.Future[Verdict | None] = loop.create_future()
        self._clean_flights.setdefault((scope, keys.clean), clean)
        violation: asyncio.Future[Verdict | None] | None = None
        if (scope, keys.violation) not in self._violation_flights:
            violation = self._violation_flights[(scope, keys.violation)] = loop.create_future()
        return Flight(scope, keys, clean, violation)

    def end(self, flight: Flight, verdict: Verdict | None, window_seconds: float) -> None:
        """Remember a decided verdict for the window and wake those waiting (None: the call failed)."""
        now = self._clock()
        scope, keys = flight.scope, flight.keys
        # Only a decided verdict is remembered: an answer that needs review (malformed, timed
        # out) is given to those already waiting for the same text, never to later messages.
        if verdict is not None and verdict.status is VerdictStatus.DECIDED:
            _put(self._by_clean, (scope, keys.clean), (now + window_seconds, verdict))
            if verdict.violation:
                _put(self._violations, (scope, keys.violation), (now + window_seconds, verdict))
        for flights, key, future in (
            (self._clean_flights, (scope, keys.clean), flight.clean),
            (self._violation_flights, (scope, keys.violation), flight.violation),
        ):
            if future is None:
                continue
            if flights.get(key) is future:
                del flights[key]
            if not future.done():
                future.set_result(verdict)
        self._sweep(self._by_clean, now)
        self._sweep(self._violations, now)

    def _sweep(self, entries: dict[_Key, tuple[float, Verdict]], now: float) -> None:
        # Expired entries sit mostly at the front (written in time order); past the cap the
        # oldest go too, so memory and the cost per message stay bounded.
        for key in list(itertools.islice(entries, _SWEEP)):
            if entries[key][0] > now and len(entries) <= self._max_entries:
                break
            del entries[key]


def _put(entries: dict[_Key, tuple[float, Verdict]], key: _Key, value: tuple[float, Verdict]) -> None:
    entries.pop(key, None)  # re-inserted at the end: the dict stays in time order
    entries[key] = value


__all__ = ["MAX_REMEMBERED_VERDICTS", "Flight", "PolicyScope", "RepeatMemory", "Reuse"]
