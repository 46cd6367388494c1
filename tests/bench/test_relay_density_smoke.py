"""The relay density benchmark runs once in smoke mode (20 call pairs for 1 s) so it
cannot rot. Asserts that each relay produced its row and relayed the load, never how
fast anything was (speed lives in bench/)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [pytest.mark.integration, pytest.mark.bench_smoke]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_relay_density",
                                                  BENCH / "relay_density.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def engine_importable() -> bool:
    try:
        importlib.import_module("switch.media.engine")
    except ImportError:
        return False
    return True


def test_relay_density_smoke_prints_a_row_per_relay(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_bench().main(["--smoke"])
    out = capsys.readouterr().out
    by_relay = {row["relay"]: row for row in rows}
    assert "us/pkt" in out and "ratio" in out
    echo = by_relay["echo-plain"]
    # 20 pairs = 40 streams at 50 packets/s for about a second, every one relayed.
    assert echo["pairs"] == 20 and echo["sent"] >= 1500
    assert echo["received"] == echo["sent"] and echo["misrouted"] == 0
    assert "   20 echo-plain" in out
    if not engine_importable():
        pytest.skip("switch.media.engine is not built: only the echo row was checked")
    engine = by_relay["engine"]
    assert engine["pairs"] == 20 and engine["sent"] >= 1500
    assert engine["misrouted"] == 0 and engine["loss_pct"] < 5.0
    assert "   20 engine" in out
