"""Model health: a probe, and one alert per server after a sustained outage, then one all-clear."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import ollama

from bot.domain import ServerSettings
from bot.notices import ModelOutage, ModelRecovered, Notice
from bot.store.ports import HealthState, ModerationStore
from bot.workflow._notify import Runs, each_server, post, servers_to_notify
from bot.workflow.ports import ModChannel, ModelProbe

__all__ = ["HealthReport", "HealthState", "OllamaProbe", "probe_model"]

log = logging.getLogger(__name__)


class OllamaProbe:
    """Healthy when the Ollama server answers and has the model pulled (a cheap /api/tags call)."""

    def __init__(self, host: str, model: str, timeout: float = 10.0) -> None:
        self.host = host
        self.model = model
        self._client = ollama.AsyncClient(host=host, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]

    async def check(self) -> str | None:
        try:
            listing = await self._client.list()
        except ollama.ResponseError as exc:
            return f"model server at {self.host} answered {exc.status_code}: {exc.error}"
        except (ConnectionError, httpx.HTTPError) as exc:
            return f"model server unreachable at {self.host} ({type(exc).__name__})"
        names = {m.model for m in listing.models if m.model}
        if self.model not in names and f"{self.model}:latest" not in names:
            return f"model {self.model} is not pulled on {self.host}: run `ollama pull {self.model}`"
        return None


@dataclass(frozen=True)
class HealthReport:
    state: HealthState
    posted: list[tuple[str, Notice]]  # (server id, notice) sent by this probe


async def probe_model(
    store: ModerationStore, probe: ModelProbe, channel: ModChannel, now: datetime, runs: Runs
) -> HealthReport:
    """Probe once and move the outage state on.

    A failure starts (or continues) an outage; a server is alerted once the outage has
    lasted its `health_alert_after_minutes`. An alerted server gets its all-clear after
    the model has answered for `health_clear_after_minutes`; a failure in between only
    restarts that wait, so a flapping model makes no new alerts. Only servers whose
    platform runs in this process are alerted (an alert nobody posted is never recorded).
    """
    try:
        problem = await probe.check()
    except Exception as exc:
        problem = f"probe failed: {type(exc).__name__}: {exc}"[:300]
    state = await store.jobs.health()
    alerted = await store.jobs.alerted_servers()
    posted: list[tuple[str, Notice]] = []
    servers = await servers_to_notify(store, runs)
    if problem is not None:
        if state.failing_since is None:
            log.warning("model health probe failed, an outage may be starting: %s", problem)
        failing_since = state.failing_since or now
        state = HealthState(failing_since=failing_since, healthy_since=None, last_problem=problem)

        async def alert(server: ServerSettings) -> tuple[str, Notice] | None:
            if (server.platform, server.server_id) in alerted:
                return None
            if now - failing_since < timedelta(minutes=server.health_alert_after_minutes):
                return None
            outage = ModelOutage(since=failing_since, problem=problem)
            # Recorded before posting: whatever the post does, the alert is never repeated.
            await store.jobs.mark_alerted(server.platform, server.server_id, now)
            await post(channel, server, outage)
            return (server.server_id, outage)

        posted += await each_server("the model outage alert", servers, alert)
    elif state.failing_since is not None:
        healthy_since = state.healthy_since or now
        outage_started = state.failing_since
        remaining = set(alerted)

        async def all_clear(server: ServerSettings) -> tuple[str, Notice] | None:
            key = (server.platform, server.server_id)
            if key not in alerted or now - healthy_since < timedelta(minutes=server.health_clear_after_minutes):
                return None
            recovered = ModelRecovered(outage_started=outage_started, recovered_at=healthy_since)
            await store.jobs.clear_alert(*key)
            await post(channel, server, recovered)
            remaining.discard(key)
            return (server.server_id, recovered)

        posted += await each_server("the model all-clear", servers, all_clear)
        # Servers that lost their mod channel meanwhile are forgotten rather than kept alerted;
        # those of a platform not running here keep their alert for the process that runs it.
        known = {(s.platform, s.server_id) for s in await store.settings.every() if s.mod_channel_id}
        for key in [k for k in remaining if k not in known]:
            await store.jobs.clear_alert(*key)
            remaining.discard(key)
        if remaining:
            state = HealthState(failing_since=state.failing_since, healthy_since=healthy_since, last_problem="")
        else:
            log.info("model answers again")
            state = HealthState()
    await store.jobs.save_health(state, now)
    return HealthReport(state=state, posted=posted)
