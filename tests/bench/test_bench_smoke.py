"""Every benchmark runs once in smoke mode so none of them rots. These assert that the
benchmark produced its table, never how fast anything was (speed lives in bench/)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import require_tool

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_sip_parse_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load("sip_parse").main(["--smoke"])
    out = capsys.readouterr().out
    assert "pyVoIP msg/s" in out and "geometric mean ratio" in out
    labels = [label for label, _, _ in rows]
    assert labels == ["INVITE with SDP", "200 OK with SDP", "REGISTER with auth",
                      "401 two challenges", "BYE"]
    assert all(ours > 0 for _, ours, _ in rows)


@pytest.mark.integration
def test_register_rate_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("sipp", "Debian package sip-tester")
    rows = load("register_rate").main(["--smoke"])
    out = capsys.readouterr().out
    assert "highest rate with zero failures" in out
    assert rows and rows[0]["failed"] == 0 and rows[0]["ok"] == 50


def run_script(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            cwd=BENCH.parent, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_dtmf_bench_smoke() -> None:
    out = run_script("bench/bench_dtmf.py", "--smoke")
    assert "Goertzel kernel (20 ms frames)" in out and "numpy batched rfft" in out


def test_kernel_bench_smoke() -> None:
    # pytest-benchmark with --benchmark-disable runs each benchmark body once.
    out = run_script("-m", "pytest", "bench/bench_kernels.py", "--benchmark-disable", "-q",
                     "-p", "no:cacheprovider")
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out[-2000:]
