"""What each platform can do, and which adapters run in this process: the effect sinks and the mod-channel router.

A platform declares its capabilities (`PlatformCapabilities`); the launcher
(`adapters/launcher.py`) collects every declaration, whether or not that platform runs in
this process, so that `settings set` can refuse, before any message is judged, an effect
rule a server's platform cannot carry out. The adapters that do run in this process are
the sinks and mod channels the `PlatformRouter` hands effects and notices to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from bot.domain import EffectKind, EffectOutcome, EffectResult, Frozen, ServerSettings
from bot.notices import Notice
from bot.ports import EffectSink

log = logging.getLogger(__name__)


class PlatformCapabilities(Frozen):
    """One platform's declaration.

    `effects`: what the platform can ever carry out; a server's settings are checked against it.
    `configured`: what this process's configuration lets it carry out now (Slack deletes only
    with an admin user token); the rest is reported at start-up and in `modbot status`, and
    recorded UNSUPPORTED when it happens. `limits`: for each effect kind it cannot carry out
    (at all, or as configured), why and what to do instead, in words for an admin.
    """

    platform: str
    effects: frozenset[EffectKind]
    configured: frozenset[EffectKind]
    limits: Mapping[EffectKind, str] = {}

    def limit(self, kind: EffectKind) -> str:
        return self.limits.get(kind, f"{self.platform} cannot carry out {kind.value}")

    def configuration_limits(self) -> list[str]:
        """What the platform could do but this process's configuration does not allow, in words."""
        return [f"{kind.value}: {self.limit(kind)}" for kind in sorted(self.effects - self.configured)]


class PlatformAdapter(EffectSink, Protocol):
    """What a platform adapter gives the core: one object that is its effect sink and its mod channel."""

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult: ...


class PlatformCatalog:
    """Every platform's declaration, keyed by platform name."""

    def __init__(self, declarations: Iterable[PlatformCapabilities] = ()) -> None:
        self._by_name = {d.platform: d for d in declarations}

    def get(self, platform: str) -> PlatformCapabilities | None:
        return self._by_name.get(platform)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def unsupported(self, settings: ServerSettings) -> list[str]:
        """Each effect the settings ask for that the server's platform cannot carry out, with what to do instead."""
        declared = self.get(settings.platform)
        if declared is None:
            return []
        problems: list[str] = []
        asked: list[tuple[str, EffectKind]] = [
            (f"effect_rules[{i}].effects", kind)
            for i, rule in enumerate(settings.effect_rules)
            for kind in rule.effects
        ]
        asked += [
            (f"strike_ladder.steps[{i}].effects", kind)
            for i, step in enumerate(settings.strike_ladder.steps)
            for kind in step.effects
        ]
        for where, kind in asked:
            if kind not in declared.effects:
                problems.append(f"{where}: {settings.platform} cannot carry out {kind.value}: {declared.limit(kind)}")
        return list(dict.fromkeys(problems))


class PlatformRouter:
    """The adapters running in this process: effects and notices go to the adapter of the server's platform.

    A platform that is declared but not running here (the CLI confirming a Discord case) has
    its effects left pending for the process that runs it; its notices are not posted and
    reported UNSUPPORTED, so that no job marks them sent.
    """

    def __init__(
        self,
        adapters: Mapping[str, EffectSink] | None = None,
        catalog: PlatformCatalog | None = None,
    ) -> None:
        self._adapters = dict(adapters or {})
        self.catalog = catalog or PlatformCatalog()

    @classmethod
    def of(cls, sinks: Mapping[str, EffectSink] | PlatformRouter) -> PlatformRouter:
        return sinks if isinstance(sinks, PlatformRouter) else cls(sinks)

    def add(self, platform: str, adapter: EffectSink) -> None:
        """Register an adapter built after the router (it needed the pipeline to submit to)."""
        self._adapters[platform] = adapter

    def get(self, platform: str) -> EffectSink | None:
        """The sink for a platform running in this process."""
        return self._adapters.get(platform)

    def runs(self, platform: str) -> bool:
        return platform in self._adapters

    def runs_elsewhere(self, platform: str) -> bool:
        """Declared, but its adapter does not run in this process: its effects wait for the one that does."""
        return platform not in self._adapters and self.catalog.get(platform) is not None

    @property
    def running(self) -> list[str]:
        return sorted(self._adapters)

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        adapter = self._adapters.get(server.platform)
        post = getattr(adapter, "post", None)
        if post is None:
            return EffectResult(
                outcome=EffectOutcome.UNSUPPORTED, detail=f"no {server.platform} adapter runs in this process"
            )
        try:
            result: EffectResult = await post(server, notice)
        except Exception as exc:
            log.warning("posting %s to server %s failed: %s", notice.kind, server.server_id, type(exc).__name__)
            return EffectResult(outcome=EffectOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:300])
        return result

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            close = getattr(adapter, "aclose", None)
            if close is not None:
                await close()
