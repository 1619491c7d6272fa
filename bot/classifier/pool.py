"""Model endpoints: a bound on calls in flight to each, policy affinity, spill-over, failover and probing.

One endpoint (the usual single Ollama) and several (`MODBOT_MODEL_ENDPOINTS`) take the same
path, so the rules below hold for every deployment:

- Never more than an endpoint's `bound` calls in flight to it. A call that finds no free
  slot waits here, in arrival order, not at the server.
- Work for one policy stays on the endpoint that first served it (its "home") while that
  endpoint has a free slot, so the server's prefix cache keeps the policy (the system
  message, thousands of tokens, comes first in every prompt). When the home is full, a
  free slot elsewhere takes the call: spill to the least-loaded endpoint. A free slot never
  idles while a call it may serve waits.
- A failing endpoint (unreachable, 5xx, 429, model missing, credentials refused) is
  marked down and skipped. The call it failed goes at once to another endpoint; the down
  one is probed in the background, with backoff, until it answers again. When every
  endpoint is down the calls themselves go out (and fail fast), so the caller's backoff
  paces them, as with a single server.
- A stuck call (no answer by the deadline) is given up and its connection closed, which
  makes Ollama, vLLM and llama.cpp stop generating. Several in a row mark the endpoint down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache

from bot.classifier.backend import CallResult, ModelBackend, ModelCall, ModelCallObserver, RawAnswer
from bot.classifier.errors import EndpointFailure, EndpointTimedOut, ModelRequestRejected
from bot.classifier.prompt import ClassificationRequest

log = logging.getLogger(__name__)

# Stuck calls in a row, with no answer in between, that take an endpoint out of rotation.
TIMEOUTS_BEFORE_DOWN = 3
# A probe is a listing of the server's models: an answer within this time, or it is down.
PROBE_TIMEOUT_SECONDS = 10.0
# Policies remembered with their home endpoint; a forgotten one gets a new home when it returns.
MAX_HOMES = 4096


@dataclass(eq=False)
class Endpoint:
    """One model server with its bound and health, as the pool sees it."""

    backend: ModelBackend
    bound: int
    timeout: float
    in_flight: int = 0
    peak_in_flight: int = 0
    up: bool = True
    problem: str = ""
    timeouts_in_a_row: int = 0

    def __post_init__(self) -> None:
        if self.bound < 1:
            raise ValueError(f"endpoint {self.backend.name}: the bound on calls in flight must be at least 1")

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def load(self) -> float:
        return self.in_flight / self.bound


@dataclass(frozen=True)
class Answered:
    endpoint: Endpoint
    raw: RawAnswer
    seconds: float


class _SilentObserver:
    def model_call(self, call: ModelCall) -> None:
        pass

    def endpoint_health(self, endpoint: str, up: bool) -> None:
        pass


@dataclass(eq=False)
class _Waiting:
    """A call waiting for a slot."""

    home_key: bytes
    avoid: Collection[str]
    tried: Collection[str]
    granted: asyncio.Future[Endpoint] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _home_key(request: ClassificationRequest) -> bytes:
    # The prefix a server can cache is the policy text, whoever uses it: two servers with the
    # same library policy share a home.
    return hashlib.blake2b(request.policy.text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


class EndpointPool:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        observer: ModelCallObserver | None = None,
        probe_seconds: tuple[float, float] = (1.0, 30.0),
        timeouts_before_down: int = TIMEOUTS_BEFORE_DOWN,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one model endpoint is needed")
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"model endpoint names must differ: {', '.join(names)} (set name=... on each)")
        self.endpoints = tuple(endpoints)
        self.observer: ModelCallObserver = observer or _SilentObserver()
        self._probe_seconds = probe_seconds
        self._timeouts_before_down = timeouts_before_down
        self._waiting: deque[_Waiting] = deque()
        self._homes: LRUCache[bytes, Endpoint] = LRUCache(maxsize=MAX_HOMES)
        self._probes: dict[str, asyncio.Task[None]] = {}
        self.peak_in_flight = 0

    @classmethod
    def of_one(cls, backend: ModelBackend, *, bound: int, timeout: float) -> EndpointPool:
        """The usual deployment: one server."""
        return cls([Endpoint(backend, bound=bound, timeout=timeout)])

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.endpoints)

    @property
    def reports_calls(self) -> bool:
        return not isinstance(self.observer, _SilentObserver)

    # ------------------------------------------------------------ calls

    async def call(self, request: ClassificationRequest, avoid: Collection[str] = ()) -> Answered:
        """One answer from some endpoint, preferring none in `avoid` (where this request already got stuck).

        Raises EndpointTimedOut (the chosen endpoint did not answer in time), EndpointFailure
        (no endpoint could take the call), or ModelRequestRejected.
        """
        key = _home_key(request)
        tried: set[str] = set()
        while True:
            endpoint = await self._acquire(key, avoid, tried)
            started = time.perf_counter()
            deadline = asyncio.timeout(endpoint.timeout)
            try:
                async with deadline:
                    raw = await endpoint.backend.complete(request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                self._report(endpoint, request, "timeout", started)
                self._timed_out(endpoint)
                raise EndpointTimedOut(endpoint.name, endpoint.timeout, model=endpoint.model) from None
            except EndpointFailure as failure:
                self._report(endpoint, request, "unavailable", started)
                self._mark_down(endpoint, failure.problem)
                tried.add(endpoint.name)
                if all(e.name in tried for e in self.endpoints):
                    raise
                continue  # the call goes to another endpoint at once
            except ModelRequestRejected:
                self._report(endpoint, request, "rejected", started)
                raise
            finally:
                self._release(endpoint)
            self._answered(endpoint)
            return Answered(endpoint, raw, time.perf_counter() - started)

    def _report(self, endpoint: Endpoint, request: ClassificationRequest, result: CallResult, started: float) -> None:
        self.observer.model_call(ModelCall(endpoint.name, request.effort.value, result, time.perf_counter() - started))

    # ------------------------------------------------------------ slots

    def _candidates(self, avoid: Collection[str], tried: Collection[str]) -> list[Endpoint]:
        """Where a call may go: up and not avoided; else up; else any not yet tried (the call probes)."""
        untried = [e for e in self.endpoints if e.name not in tried]
        preferred = [e for e in untried if e.up and e.name not in avoid]
        if preferred:
            return preferred
        return [e for e in untried if e.up] or untried

    def _home(self, key: bytes) -> Endpoint:
        home = self._homes.get(key)
        if home is None or (not home.up and any(e.up for e in self.endpoints)):
            # A new home: the endpoint with the fewest homes for its size, then the least loaded.
            pool = [e for e in self.endpoints if e.up] or list(self.endpoints)
            homes = Counter(id(e) for e in self._homes.values())
            home = min(pool, key=lambda e: (homes[id(e)] / e.bound, e.load))
            self._homes[key] = home
        return home

    async def _acquire(self, key: bytes, avoid: Collection[str], tried: Collection[str]) -> Endpoint:
        waiting = _Waiting(key, avoid, tried)
        self._waiting.append(waiting)
        self._dispatch()
        try:
            return await waiting.granted
        except asyncio.CancelledError:
            if waiting.granted.done() and not waiting.granted.cancelled():
                self._release(waiting.granted.result())  # granted just as the caller gave up
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiting)
            raise

    def _dispatch(self) -> None:
        """Give free slots to waiting calls: first each endpoint's own policies, then anyone's (spill)."""
        if not self._waiting:
            return
        for spill in (False, True):
            for endpoint in sorted(self.endpoints, key=lambda e: e.load):
                while endpoint.in_flight < endpoint.bound and self._waiting:
                    waiting = self._next_for(endpoint, spill)
                    if waiting is None:
                        break
                    self._waiting.remove(waiting)
                    endpoint.in_flight += 1
                    endpoint.peak_in_flight = max(endpoint.peak_in_flight, endpoint.in_flight)
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    waiting.granted.set_result(endpoint)
            if not self._waiting:
                return

    def _next_for(self, endpoint: Endpoint, spill: bool) -> _Waiting | None:
        for waiting in self._waiting:
            if waiting.granted.done():  # cancelled, about to leave the line
                continue
            if endpoint not in self._candidates(waiting.avoid, waiting.tried):
                continue
            if spill or self._home(waiting.home_key) is endpoint:
                return waiting
        return None

    def _release(self, endpoint: Endpoint) -> None:
        endpoint.in_flight -= 1
        self._dispatch()

    # ------------------------------------------------------------ health

    def _answered(self, endpoint: Endpoint) -> None:
        endpoint.timeouts_in_a_row = 0
        if not endpoint.up:
            self._mark_up(endpoint)

    def _timed_out(self, endpoint: Endpoint) -> None:
        endpoint.timeouts_in_a_row += 1
        if endpoint.timeouts_in_a_row >= self._timeouts_before_down and endpoint.up:
            self._mark_down(endpoint, f"{endpoint.timeouts_in_a_row} calls in a row timed out")

    def _mark_down(self, endpoint: Endpoint, problem: str) -> None:
        endpoint.problem = problem
        if not endpoint.up:
            return
        endpoint.up = False
        self.observer.endpoint_health(endpoint.name, False)
        if len(self.endpoints) > 1:
            others = [e.name for e in self.endpoints if e.up]
            where = f"its calls go to {', '.join(others)}" if others else "no endpoint is up"
            log.warning(
                "model endpoint %s is down (%s); %s, and it is probed until it answers", endpoint.name, problem, where
            )
        if endpoint.name not in self._probes:
            self._probes[endpoint.name] = asyncio.get_running_loop().create_task(
                self._probe_until_up(endpoint), name=f"probe {endpoint.name}"
            )
        self._dispatch()  # calls waiting for this endpoint's slots may go elsewhere now

    def _mark_up(self, endpoint: Endpoint) -> None:
        if endpoint.up:
            return
        endpoint.up = True
        endpoint.problem = ""
        endpoint.timeouts_in_a_row = 0
        self.observer.endpoint_health(endpoint.name, True)
        if len(self.endpoints) > 1:
            log.warning("model endpoint %s answers again", endpoint.name)
        self._dispatch()

    async def _probe_once(self, endpoint: Endpoint) -> str | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                return await endpoint.backend.probe()
        except TimeoutError:
            return f"no answer to a probe within {PROBE_TIMEOUT_SECONDS:g} s"
        except Exception as exc:  # a probe reports; it never takes the bot down
            return f"probe failed: {type(exc).__name__}: {exc}"

    async def _probe_until_up(self, endpoint: Endpoint) -> None:
        delay, longest = self._probe_seconds
        try:
            while not endpoint.up:
                await asyncio.sleep(delay)
                if endpoint.up:  # a real call found it answering meanwhile
                    break
                problem = await self._probe_once(endpoint)
                if problem is None:
                    self._mark_up(endpoint)
                else:
                    endpoint.problem = problem
                    delay = min(delay * 2, longest)
        finally:
            self._probes.pop(endpoint.name, None)

    async def check(self) -> str | None:
        """Probe every endpoint now: None if at least one can serve, else what is wrong with each."""
        problems = await asyncio.gather(*(self._probe_once(e) for e in self.endpoints))
        for endpoint, problem in zip(self.endpoints, problems, strict=True):
            if problem is None:
                self._mark_up(endpoint)
            else:
                self._mark_down(endpoint, problem)
        if any(p is None for p in problems):
            return None
        if len(self.endpoints) == 1:
            return problems[0]
        return "; ".join(f"{e.name}: {p}" for e, p in zip(self.endpoints, problems, strict=True))

    def health(self) -> dict[str, str | None]:
        """Each endpoint's name, with None when it is up or the last problem seen when it is down."""
        return {e.name: (None if e.up else e.problem or "down") for e in self.endpoints}

    async def aclose(self) -> None:
        for task in list(self._probes.values()):
            task.cancel()
        for task in list(self._probes.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for endpoint in self.endpoints:
            await endpoint.backend.aclose()
