"""The call setup rate benchmark runs once in smoke mode (40 calls at 20 calls/s through
the real switch, SIPp as gateway and as agents) so it cannot rot. Asserts that the table
came out and every call was set up and cleared, never how fast (speed lives in bench/)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import require_tool

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [pytest.mark.integration, pytest.mark.bench_smoke]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_call_rate", BENCH / "call_rate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_call_rate_smoke_sets_up_every_call_and_prints_the_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("sipp", "Debian package sip-tester")
    bench = load_bench()
    steps = bench.main(["--smoke"])
    out = capsys.readouterr().out
    assert bench.HEADER in out
    assert "highest rate with zero failed calls: " in out, out
    assert len(steps) == 1
    step = steps[0]
    assert (step.rate, step.calls, step.ok, step.failed, step.agent_failed) == (
        bench.SMOKE_RATE, bench.SMOKE_CALLS, bench.SMOKE_CALLS, 0, 0), out
    assert bench.format_step(step) in out
    # Every call was rung and answered through the switch: a delay for each, none lost.
    assert not math.isnan(step.pdd_180_ms[1]) and not math.isnan(step.pdd_200_ms[1])
    assert step.achieved > 0 and step.rss_mb > 0
