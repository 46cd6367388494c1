"""The caller lookup benchmark runs once in smoke mode (10,000 customers) so it cannot
rot: the table comes out, and every method found exactly the existing half of the
numbers. Never how fast (speed lives in bench/)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = pytest.mark.bench_smoke


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_customer_lookup",
                                                  BENCH / "customer_lookup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_customer_lookup_smoke_prints_the_table_and_finds_the_existing_half(
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    pg_url = os.environ.get(bench.PG_URL_ENV)
    results = bench.main(["--smoke", *(["--pg-url", pg_url] if pg_url else [])])
    out = capsys.readouterr().out
    assert bench.HEADER in out
    backends = ["sqlite", "postgresql"] if pg_url else ["sqlite"]
    assert [(r.backend, r.method.split(":")[0].split(" (")[0]) for r in results] == [
        (b, m) for b in backends for m in ("raw probe", "raw same SQL", "ours")]
    for result in results:
        assert bench.format_result(result) in out
        assert result.customers == bench.SMOKE_CUSTOMERS
        # Even-numbered lookups are stored numbers, odd ones never are.
        assert result.found == bench.SMOKE_LOOKUPS // 2, result
        assert 0 < result.p50_us <= result.p99_us <= result.max_us
    for backend in backends:
        assert f"{backend}: p99 " in out and " ms floor at 10,000 customers" in out
