"""What the model can do: seconds per call per effort, the slots, the demand, and the drain time.

Pure and clock-injected: every method that depends on time takes `now` (monotonic
seconds), so tests and the benchmark drive it with a virtual clock.

The drain time is the time to clear the backlog while work keeps arriving:
backlog work / (slots - arriving work per second), in model-seconds. When work arrives
faster than the slots serve it the backlog never drains, and the estimate is infinite.
Callers pass the backlog and the demand at their *unshed* cost (what the calls would be
without shedding): shedding lowers what is actually done, not what the traffic asks for,
so recovery is declared only when the bot could keep up at full service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bot.domain import Effort

# Before any call is measured: one 16 GB GPU, gpt-oss-safeguard-20b on Ollama (MODEL.md:
# about 1-2 s per call at low to medium effort). Replaced by the first measurement.
DEFAULT_SECONDS_PER_CALL: Mapping[Effort, float] = {Effort.LOW: 1.0, Effort.MEDIUM: 1.6, Effort.HIGH: 4.0}


@dataclass(frozen=True)
class CapacitySnapshot:
    """The figures `/modbot status` and `/metrics` show."""

    slots: int
    seconds_per_call: Mapping[Effort, float]
    measured_calls: Mapping[Effort, int]
    utilisation: float  # arriving work / what the slots can serve; 1.0 and more never drains
    backlog_work_seconds: float
    drain_seconds: float  # math.inf when the backlog cannot drain at the current demand


class CapacityModel:
    """Learns the model's speed and the traffic's demand; estimates the backlog's drain time.

    `smoothing` is the weight of each new measurement in the exponentially weighted mean
    of seconds per call (0.2: a change of speed shows within about ten calls, one slow call
    moves the mean by a fifth of its excess). `demand_window_seconds` is the time constant
    of the arriving-work rate: a burst shorter than that is averaged, a sustained change
    shows within it.
    """

    def __init__(
        self,
        slots: int,
        *,
        smoothing: float = 0.2,
        prior_seconds: Mapping[Effort, float] = DEFAULT_SECONDS_PER_CALL,
        demand_window_seconds: float = 60.0,
    ) -> None:
        if slots < 1:
            raise ValueError("the model has at least one slot")
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing is a weight in (0, 1]")
        if demand_window_seconds <= 0:
            raise ValueError("the demand window is a positive number of seconds")
        self.slots = slots
        self.smoothing = smoothing
        self.demand_window_seconds = demand_window_seconds
        self._seconds = {effort: float(prior_seconds[effort]) for effort in Effort}
        self._measured = dict.fromkeys(Effort, 0)
        # Per effort: the decayed sum of calls asked for, and when it was last decayed.
        self._demand = dict.fromkeys(Effort, 0.0)
        self._demand_at: float | None = None

    # ------------------------------------------------------------ speed

    def record_call(self, effort: Effort, seconds: float) -> None:
        """One answered call's service time.

        Feed the time the server spent on the call (Ollama's total_duration), or the round
        trip when the bot sends no more calls than the server has slots; not a call that
        failed or timed out, whose time says nothing about the next one.
        """
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"a call cannot take {seconds} seconds")
        if self._measured[effort] == 0:
            self._seconds[effort] = seconds  # the first measurement replaces the prior outright
        else:
            self._seconds[effort] += self.smoothing * (seconds - self._seconds[effort])
        self._measured[effort] += 1

    def seconds_per_call(self, effort: Effort) -> float:
        return self._seconds[effort]

    def work_seconds(self, calls: Mapping[Effort, float]) -> float:
        """Model-seconds that many calls take on one slot."""
        return sum(count * self._seconds[effort] for effort, count in calls.items())

    # ------------------------------------------------------------ demand

    def _decay_to(self, now: float) -> None:
        if self._demand_at is not None and now > self._demand_at:
            factor = math.exp(-(now - self._demand_at) / self.demand_window_seconds)
            for effort in Effort:
                self._demand[effort] *= factor
        if self._demand_at is None or now > self._demand_at:
            self._demand_at = now

    def record_demand(self, now: float, calls: Mapping[Effort, float]) -> None:
        """Work arriving now: the calls one message (or appeal, or preview) would cost at full service."""
        self._decay_to(now)
        for effort, count in calls.items():
            self._demand[effort] += count

    def demand_calls_per_second(self, now: float) -> dict[Effort, float]:
        self._decay_to(now)
        return {effort: total / self.demand_window_seconds for effort, total in self._demand.items()}

    def utilisation(self, now: float) -> float:
        """The share of the slots the arriving work needs."""
        return self.work_seconds(self.demand_calls_per_second(now)) / self.slots

    # ------------------------------------------------------------ the backlog

    def drain_seconds(self, backlog: Mapping[Effort, float], now: float) -> float:
        """Seconds until the backlog is cleared while work keeps arriving at its current rate."""
        work = self.work_seconds(backlog)
        if work <= 0:
            return 0.0
        spare = 1.0 - self.utilisation(now)
        if spare <= 0:
            return math.inf
        return work / self.slots / spare

    def snapshot(self, backlog: Mapping[Effort, float], now: float) -> CapacitySnapshot:
        return CapacitySnapshot(
            slots=self.slots,
            seconds_per_call=dict(self._seconds),
            measured_calls=dict(self._measured),
            utilisation=self.utilisation(now),
            backlog_work_seconds=self.work_seconds(backlog),
            drain_seconds=self.drain_seconds(backlog, now),
        )


def describe_drain(seconds: float) -> str:
    """A drain time as people read it in a notice or the status page."""
    if math.isinf(seconds):
        return "never at the current rate: messages arrive faster than the model serves them"
    if seconds < 1:
        return "no backlog"
    if seconds < 90:
        return f"about {round(seconds)} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
