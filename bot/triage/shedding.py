"""Load shedding: when to start and stop, who is told, and what shedding does to each kind of work.

A state machine with hysteresis: shedding starts when the backlog's drain time rises above
`start_above_seconds`, and stops once it has stayed below the lower `stop_below_seconds`
for `recover_after_seconds`, so an estimate hovering near one threshold cannot make it
flap. Each episode has one start and one recovery; each server whose traffic was shed is
told once when its traffic is first shed and once when the episode ends. Pure and
clock-injected: `now` is passed in (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.domain import Effort
from bot.triage.config import TriageMode

ServerRef = tuple[str, str]  # (platform, server_id): a server's identity across platforms


class ShedMode(StrEnum):
    """What shedding does to bulk traffic."""

    # Through the screen first, whatever the server's triage setting; the policies it
    # names are judged at the server's effort. The largest saving for the least quality.
    SCREEN = "screen"
    # Every call at low effort, with the server's own triage setting.
    LOW_EFFORT = "low-effort"
    # Both: the screen, and the named policies at low effort.
    SCREEN_AND_LOW_EFFORT = "screen-and-low-effort"


class SheddingConfig(BaseModel):
    """A process setting: the model is shared by every server the process serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # A moderator expects a flag within a minute or two; past that the bot sheds.
    start_above_seconds: float = Field(default=120.0, gt=0)
    stop_below_seconds: float = Field(default=30.0, gt=0)
    recover_after_seconds: float = Field(default=60.0, ge=0)
    mode: ShedMode = ShedMode.SCREEN

    @model_validator(mode="after")
    def _hysteresis(self) -> SheddingConfig:
        if self.stop_below_seconds >= self.start_above_seconds:
            raise ValueError(
                f"shedding must stop below a lower drain time than it starts above "
                f"(stop {self.stop_below_seconds:g} s, start {self.start_above_seconds:g} s)"
            )
        return self


@dataclass(frozen=True)
class SheddingStarted:
    at: float
    drain_seconds: float
    threshold_seconds: float


@dataclass(frozen=True)
class SheddingRecovered:
    at: float
    drain_seconds: float
    lasted_seconds: float
    # The servers told that their traffic was shed: each gets the all-clear.
    servers: tuple[ServerRef, ...]


@dataclass
class _Episode:
    started_at: float
    drain_at_start: float
    servers: list[ServerRef] = field(default_factory=list)
    below_since: float | None = None


class LoadShedder:
    def __init__(self, config: SheddingConfig | None = None) -> None:
        self.config = config or SheddingConfig()
        self._episode: _Episode | None = None

    @property
    def active(self) -> bool:
        return self._episode is not None

    @property
    def started_at(self) -> float | None:
        return self._episode.started_at if self._episode else None

    def observe(self, now: float, drain_seconds: float) -> SheddingStarted | SheddingRecovered | None:
        """Feed the current drain estimate; returns the episode's start or end when it happens."""
        config = self.config
        episode = self._episode
        if episode is None:
            if config.enabled and drain_seconds > config.start_above_seconds:
                self._episode = _Episode(started_at=now, drain_at_start=drain_seconds)
                return SheddingStarted(now, drain_seconds, config.start_above_seconds)
            return None
        if drain_seconds >= config.stop_below_seconds and config.enabled:
            episode.below_since = None
            return None
        # Turning shedding off in the settings ends an episode at once, with its all-clear.
        if episode.below_since is None:
            episode.below_since = now
        if config.enabled and now - episode.below_since < config.recover_after_seconds:
            return None
        self._episode = None
        return SheddingRecovered(now, drain_seconds, now - episode.started_at, tuple(episode.servers))

    def note_shed(self, server: ServerRef) -> bool:
        """Record that this server's traffic was shed; True the first time in this episode (tell it)."""
        if self._episode is None or server in self._episode.servers:
            return False
        self._episode.servers.append(server)
        return True


# ---------------------------------------------------------------- what shedding does


class WorkKind(StrEnum):
    """Why the model is asked: bulk chat traffic, or a person waiting for the answer."""

    CHAT = "chat"  # every chat message and edit: bulk, may be shed
    APPEAL = "appeal"  # the second opinion an author's appeal asks for
    REPORT = "report"  # a member or moderator reporting a message
    PREVIEW = "preview"  # a policy draft tried on past messages

    @property
    def interactive(self) -> bool:
        return self is not WorkKind.CHAT


@dataclass(frozen=True)
class JudgingPlan:
    """How one piece of work is judged now."""

    triage: TriageMode
    effort: Effort
    # Shedding changed this plan from the server's own settings: the server is told.
    shed: bool = False


def plan_judging(
    kind: WorkKind, *, triage: TriageMode, effort: Effort, shedding: bool, mode: ShedMode = ShedMode.SCREEN
) -> JudgingPlan:
    """The triage and effort for a piece of work, given the server's settings and the shedding state.

    Interactive work (appeals, reports, previews) keeps the effort it asked for and is
    never screened: a person is waiting for a careful answer, and there is little of it.
    """
    if kind.interactive:
        return JudgingPlan(TriageMode.OFF, effort)
    if not shedding:
        return JudgingPlan(triage, effort)
    screen = mode in (ShedMode.SCREEN, ShedMode.SCREEN_AND_LOW_EFFORT)
    low = mode in (ShedMode.LOW_EFFORT, ShedMode.SCREEN_AND_LOW_EFFORT)
    planned = JudgingPlan(TriageMode.SCREEN if screen else triage, Effort.LOW if low else effort)
    return JudgingPlan(planned.triage, planned.effort, shed=(planned.triage, planned.effort) != (triage, effort))
