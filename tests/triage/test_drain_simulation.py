"""The benchmark's drain simulation, on its virtual clock: shedding drains a backlog it could not.

bench/triage.py drives the real CapacityModel, LoadShedder and plan_judging through a
discrete-event model of two slots; these checks keep its figures honest.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

from tests.triage.helpers import REPO


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_triage", REPO / "bench" / "triage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


BENCH = load_bench()
MIX = 1.05  # calls per message under the screen, as Part 2 measures with the fake
SHARE = 50 / 1050


def test_without_shedding_a_backlog_the_slots_cannot_serve_never_drains() -> None:
    result = BENCH.simulate_drain(1.0, shedding=False, screen_mix=MIX, violation_share=SHARE, horizon=3600)
    assert result.drained_at is None and math.isinf(result.limit)
    assert result.episodes == 0 and result.notices == 0


def test_shedding_drains_it_within_the_fluid_bound_and_keeps_shedding_while_the_load_lasts() -> None:
    result = BENCH.simulate_drain(1.0, shedding=True, screen_mix=MIX, violation_share=SHARE)
    assert result.drained_at is not None
    assert 0.8 < result.drained_at / result.limit < 1.05
    assert result.shed_at_end and result.episodes == 1 and result.notices == 1  # no all-clear yet


def test_a_passing_backlog_is_shed_then_recovered_with_one_notice_each_way() -> None:
    shed = BENCH.simulate_drain(0.1, shedding=True, screen_mix=MIX, violation_share=SHARE)
    full = BENCH.simulate_drain(0.1, shedding=False, screen_mix=MIX, violation_share=SHARE)
    assert shed.episodes == 1 and shed.notices == 2 and not shed.shed_at_end
    assert shed.drained_at is not None and full.drained_at is not None
    assert shed.drained_at < full.drained_at / 5
