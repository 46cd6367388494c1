"""The end-to-end call density benchmark runs once in smoke mode (5 calls held 3 s
through the real switch) so it cannot rot. Asserts that the table was printed, that
audio crossed the switch both ways without loss and that every call was recorded,
never how many calls the machine carries (that lives in bench/)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [pytest.mark.integration, pytest.mark.bench_smoke]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_call_density",
                                                  BENCH / "call_density.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_call_density_smoke_prints_a_lossless_recorded_step(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_bench().main(["--smoke"])
    out = capsys.readouterr().out
    assert "loss % pstn>agent" in out and "sw CPU %" in out and "RSS MB" in out
    assert "largest N with < 0.1% loss both ways, every call up and recorded: 5 calls" in out
    [row] = rows
    assert (row["calls"], row["answered"], row["calls_up_at_end"]) == (5, 5, 5)
    assert row["failed"] == []
    assert row["loss_to_agent_pct"] == 0.0 and row["loss_to_pstn_pct"] == 0.0
    # Packets really flowed both ways (a silent stream would have no gaps to count).
    assert row["rx_of_expected_pct"] > 95.0
    assert row["delivered_to_agent_pct"] > 95.0 and row["delivered_to_pstn_pct"] > 95.0
    recordings = row["recordings"]
    assert recordings["files"] == 5 and recordings["ok"] == 5
    assert recordings["shortest_s"] >= 0.95 * row["hold_s"]
    assert row["switch_cpu_pct"] > 0.0 and row["rss_mb"] > 10.0
    assert row["log_problems"] == []
    assert "    5     5             0.000      0.000" in out
