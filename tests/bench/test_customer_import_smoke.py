"""The customer import benchmark runs once in smoke mode (2 000 rows into a fresh SQLite
database) so it cannot rot. Asserts that the table came out and that every good row
was imported once and found again unchanged, never how fast (speed lives in bench/)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_customer_import",
                                                  BENCH / "customer_import.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_customer_import_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    [row] = load_bench().main(["--smoke"])
    out = capsys.readouterr().out
    assert "openpyxl read only (baseline)" in out and "import again (idempotent)" in out
    assert "floor: 100,000 rows < 60 s" in out
    assert (row["rows"], row["bad_rows"]) == (2000, 20)
    assert (row["imported"], row["rejected"], row["groups_created"]) == (1980, 20, 40)
    assert (row["reimport_imported"], row["reimport_unchanged"]) == (0, 1980)
