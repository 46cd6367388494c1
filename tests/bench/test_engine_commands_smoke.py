"""The engine command benchmark runs once in smoke mode (300 cycles per row) so it
cannot rot. Asserts that each row came out and both modes ran, never how fast anything
was (speed lives in bench/)."""

from __future__ import annotations

import pytest

from tests.bench.test_bench_smoke import load

pytestmark = [pytest.mark.integration, pytest.mark.bench_smoke]


def test_engine_commands_smoke_prints_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load("engine_commands").main(["--smoke"])
    out = capsys.readouterr().out
    assert "caller us/cycle" in out and "ratio" in out
    assert [(r["workers"], r["grouped"], r["mode"]) for r in rows] == [
        (1, True, "synchronous"), (1, True, "queued"),
        (2, True, "synchronous"), (2, True, "queued"),
        (2, False, "synchronous"), (2, False, "queued"),
    ]
    assert all(r["cycles"] == 300 and r["cycles_per_s"] > 0 and r["end_to_end_per_s"] > 0
               for r in rows)
