"""Model health: a probe, and one alert per server after a sustained outage, then one all-clear."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import ollama

from bot.domain import Frozen, UtcDatetime
from bot.notices import ModelOutage, ModelRecovered, Notice
from bot.store import SqliteStore
from bot.workflow._notify import post, servers_with_mod_channel
from bot.workflow.ports import ModChannel, ModelProbe

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


class HealthState(Frozen):
    failing_since: UtcDatetime | None
    healthy_since: UtcDatetime | None
    last_problem: str


@dataclass(frozen=True)
class HealthReport:
    state: HealthState
    posted: list[tuple[str, Notice]]  # (server id, notice) sent by this probe


async def load_state(store: SqliteStore) -> HealthState:
    row = await store.fetchone("SELECT failing_since, healthy_since, last_problem FROM model_health WHERE id = 1")
    if row is None:
        return HealthState(failing_since=None, healthy_since=None, last_problem="")
    return HealthState(
        failing_since=datetime.fromisoformat(row[0]) if row[0] else None,
        healthy_since=datetime.fromisoformat(row[1]) if row[1] else None,
        last_problem=row[2],
    )


async def probe_model(store: SqliteStore, probe: ModelProbe, channel: ModChannel, now: datetime) -> HealthReport:
    """Probe once and move the outage state on.

    A failure starts (or continues) an outage; a server is alerted once the outage has
    lasted its `health_alert_after_minutes`. An alerted server gets its all-clear after
    the model has answered for `health_clear_after_minutes`; a failure in between only
    restarts that wait, so a flapping model makes no new alerts.
    """
    try:
        problem = await probe.check()
    except Exception as exc:
        problem = f"probe failed: {type(exc).__name__}: {exc}"[:300]
    state = await load_state(store)
    alerted = {r[0] for r in await store.fetchall("SELECT server_id FROM health_alerts")}
    posted: list[tuple[str, Notice]] = []
    servers = await servers_with_mod_channel(store)
    if problem is not None:
        if state.failing_since is None:
            log.warning("model health probe failed, an outage may be starting: %s", problem)
        failing_since = state.failing_since or now
        state = HealthState(failing_since=failing_since, healthy_since=None, last_problem=problem)
        for server in servers:
            if server.server_id in alerted:
                continue
            if now - failing_since >= timedelta(minutes=server.health_alert_after_minutes):
                outage = ModelOutage(since=failing_since, problem=problem)
                await _mark_alerted(store, server.server_id, now)
                await post(channel, server, outage)
                posted.append((server.server_id, outage))
    elif state.failing_since is not None:
        healthy_since = state.healthy_since or now
        remaining = set(alerted)
        for server in servers:
            if server.server_id not in alerted:
                continue
            if now - healthy_since >= timedelta(minutes=server.health_clear_after_minutes):
                recovered = ModelRecovered(outage_started=state.failing_since, recovered_at=healthy_since)
                await _clear_alert(store, server.server_id)
                await post(channel, server, recovered)
                posted.append((server.server_id, recovered))
                remaining.discard(server.server_id)
        # Servers that lost their mod channel meanwhile are forgotten rather than kept alerted.
        known = {s.server_id for s in servers}
        for server_id in [s for s in remaining if s not in known]:
            await _clear_alert(store, server_id)
            remaining.discard(server_id)
        if remaining:
            state = HealthState(failing_since=state.failing_since, healthy_since=healthy_since, last_problem="")
        else:
            log.info("model answers again")
            state = HealthState(failing_since=None, healthy_since=None, last_problem="")
    await _save_state(store, state, now)
    return HealthReport(state=state, posted=posted)


async def _mark_alerted(store: SqliteStore, server_id: str, now: datetime) -> None:
    # Recorded before posting: whatever the post does, the alert is never repeated.
    async with store.transaction() as conn:
        await conn.execute(
            "INSERT INTO health_alerts (server_id, alerted_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (server_id, now.isoformat()),
        )


async def _clear_alert(store: SqliteStore, server_id: str) -> None:
    async with store.transaction() as conn:
        await conn.execute("DELETE FROM health_alerts WHERE server_id = ?", (server_id,))


async def _save_state(store: SqliteStore, state: HealthState, now: datetime) -> None:
    async with store.transaction() as conn:
        await conn.execute(
            "INSERT INTO model_health (id, failing_since, healthy_since, last_problem, probed_at)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET failing_since = excluded.failing_since,"
            " healthy_since = excluded.healthy_since, last_problem = excluded.last_problem,"
            " probed_at = excluded.probed_at",
            (
                state.failing_since.isoformat() if state.failing_since else None,
                state.healthy_since.isoformat() if state.healthy_since else None,
                state.last_problem,
                now.isoformat(),
            ),
        )
