"""Relay density: how many bridged calls one media worker on one core carries, and what
each relayed packet costs beside the kernel's own cost for the same packets.

    .venv/bin/python bench/relay_density.py                      # 250 .. 3000 call pairs
    .venv/bin/python bench/relay_density.py --calls 500,1000 --seconds 5
    .venv/bin/python bench/relay_density.py --echo-variant both  # recvfrom/sendto vs mmsg
    .venv/bin/python bench/relay_density.py --engine-window-us 1000  # coalesced wake-ups
    .venv/bin/python bench/relay_density.py --record             # every call recorded
    .venv/bin/python bench/relay_density.py --smoke              # N=20 for 1 s (test suite)

For each N, three processes: the load generator (bench/loadgen.pyx, 2N "phone" sockets,
a 172-byte RTP packet every 20 ms per socket, deadlines spread evenly over the period)
pinned to CPU 1; and, one after the other on CPU 0, the relay under test: the media
engine (switch.media.engine, workers=1) and the plain C echo (recv one packet, send it
to the other side's phone, no RTP logic). Each sits between the same 2N phones, so both
relay 100 N packets/s.

Columns: CPU % is the relay process's on-CPU time (scheduler time of all its threads,
which includes the softirq work of delivering what it sends over loopback, done in the
sender's context); us/pkt is that time per packet the phones received. Latency is
one-way, phone to phone (send stamp in the payload, CLOCK_MONOTONIC at receive), so it
includes two loopback hops and the load generator's own wake-ups: compare engine with
echo. Jitter is |latency - previous latency| within a stream. lg CPU% and late (sends
more than 1 ms behind their deadline) say whether the load generator kept up; other%
is the time other processes took on the relay's / load generator's core during the
window (this is a shared machine: rows with a large one are suspect).
Stepping stops once the engine (or, without one, the echo) loses more than 0.1%.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = BENCH / "_host.py"

DEFAULT_CALLS = [250, 500, 1000, 1500, 2000, 2500, 3000]
LOSS_LIMIT_PCT = 0.1
RELAY_CPU = 0
LOADGEN_CPU = 1
SMOKE_CALLS = 20
SMOKE_SECONDS = 1.0


def ensure_built() -> None:
    """Build bench/loadgen.pyx in place on first use (*.so and *.c are git-ignored)."""
    sys.path.insert(0, str(BENCH))
    try:
        importlib.import_module("loadgen")
        return
    except ImportError:
        pass
    subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-q",
                    str(BENCH / "loadgen.pyx")], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    importlib.invalidate_caches()
    importlib.import_module("loadgen")


def engine_available() -> bool:
    try:
        importlib.import_module("switch.media.engine")
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def host(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, str(HOST), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    with proc:  # closes the pipes and waits for the exit
        try:
            yield proc
        except BaseException:
            proc.kill()  # failed half-way: leave no relay or phones behind
            raise


def tell(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def listen(proc: subprocess.Popen[str], role: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{role} process exited with status {proc.wait()}")
    message: dict[str, Any] = json.loads(line)
    return message


def run_step(relay: str, pairs: int, seconds: float, *, warmup_s: float,
             echo_window_us: int = 0, engine_window_us: int = 0,
             record_dir: str = "") -> dict[str, Any]:
    """One N, one relay: returns the load generator's figures and the relay's own."""
    relay_args = {"engine": ["engine", "--cpu", str(RELAY_CPU),
                             "--window-us", str(engine_window_us)]
                  + (["--record", record_dir] if record_dir else []),
                  "echo-plain": ["echo", "--variant", "plain", "--cpu", str(RELAY_CPU),
                                 "--window-us", str(echo_window_us)],
                  "echo-mmsg": ["echo", "--variant", "mmsg", "--cpu", str(RELAY_CPU),
                                "--window-us", str(echo_window_us)]}[relay]
    with host("loadgen", "--pairs", str(pairs), "--cpu", str(LOADGEN_CPU)) as gen, \
            host(*relay_args) as rel:
        phones = listen(gen, "loadgen")["ports"]
        tell(rel, {"phones": phones})
        legs = listen(rel, relay)
        tell(gen, {"legs": legs["ports"], "relay_pid": legs["pid"], "relay_cpu": RELAY_CPU,
                   "warmup_s": warmup_s, "seconds": seconds, "drain_s": 0.2})
        result = listen(gen, "loadgen")
        assert rel.stdin is not None
        rel.stdin.close()
        result["relay_counters"] = listen(rel, relay)
        result["recording"] = legs.get("recording", False)
    window = result["window_s"]
    cpu_s = result["relay_task_cpu_s"]
    packets = result["received"]
    result.update({
        "relay": relay, "pairs": pairs,
        "loss_pct": 100.0 * result["lost"] / result["sent"] if result["sent"] else 100.0,
        "cpu_pct": 100.0 * cpu_s / window,
        # Work of other processes on each pinned core during the window: a figure taken
        # while something else ran there is suspect.
        "relay_core_other_pct": 100.0 * max(0.0, result["relay_core_busy_s"] - cpu_s) / window,
        "loadgen_core_other_pct": 100.0 * max(
            0.0, result["loadgen_core_busy_s"] - result["loadgen_cpu_s"]) / window,
        "us_per_packet": 1e6 * cpu_s / packets if packets else float("inf"),
        "loadgen_cpu_pct": 100.0 * result["loadgen_cpu_s"] / window,
        "pps": packets / window,
    })
    return result


HEADER = (f"{'N':>5} {'relay':<11} {'CPU %':>6} {'us/pkt':>7} {'loss %':>7} "
          f"{'lat p50':>8} {'lat p99':>8} {'jit p50':>8} {'jit p99':>8} {'pkt/s':>8} "
          f"{'lg CPU%':>7} {'late':>6} {'other%':>11}")


def format_row(r: dict[str, Any]) -> str:
    other = f"{r['relay_core_other_pct']:.0f}/{r['loadgen_core_other_pct']:.0f}"
    return (f"{r['pairs']:>5} {r['relay']:<11} {r['cpu_pct']:>6.1f} "
            f"{r['us_per_packet']:>7.2f} {r['loss_pct']:>7.3f} "
            f"{r['latency_p50_ms']:>8.3f} {r['latency_p99_ms']:>8.3f} "
            f"{r['jitter_p50_ms']:>8.3f} {r['jitter_p99_ms']:>8.3f} {r['pps']:>8.0f} "
            f"{r['loadgen_cpu_pct']:>7.1f} {r['late_sends']:>6} {other:>11}")


def overran(result: dict[str, Any]) -> bool:
    engine = result.get("relay_counters", {}).get("engine", {})
    return any(k in engine and engine[k] for k in ("tick_overruns", "overruns"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")],
                        default=DEFAULT_CALLS, help="call pairs per step, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--echo-variant", choices=["plain", "mmsg", "both"], default="plain",
                        help="baseline: recvfrom/sendto per packet, recvmmsg/sendmmsg, or both")
    parser.add_argument("--echo-window-us", type=int, default=0,
                        help="echo sleeps to the next window boundary after each pass "
                             "(coalesced wake-ups); 0 = wake on every readiness")
    parser.add_argument("--engine-window-us", type=int, default=0,
                        help="MediaEngine(wakeup_window_us=...): coalesce readiness for "
                             "this long after each wake-up; 0 = wake on every readiness")
    parser.add_argument("--no-engine", action="store_true", help="echo baseline only")
    parser.add_argument("--record", action="store_true", help="record every call (stereo WAV)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"N={SMOKE_CALLS} for {SMOKE_SECONDS:g} s, engine and echo")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.seconds, args.warmup = [SMOKE_CALLS], SMOKE_SECONDS, 0.3
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    ensure_built()
    with_engine = not args.no_engine and engine_available()
    if not with_engine and not args.no_engine:
        print("switch.media.engine not built: echo baseline only")
    record_dir = ""
    if args.record and with_engine:
        record_dir = tempfile.mkdtemp(prefix="relay-density-rec-")
    echoes = ["echo-plain", "echo-mmsg"] if args.echo_variant == "both" \
        else [f"echo-{args.echo_variant}"]
    relays = echoes + (["engine"] if with_engine else [])
    if len(os.sched_getaffinity(0)) < 2:
        print("fewer than two CPUs: relay and load generator share a core")
    print(HEADER)
    rows: list[dict[str, Any]] = []
    summary: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []
    for pairs in args.calls:
        step: dict[str, dict[str, Any]] = {}
        for relay in relays:
            result = run_step(relay, pairs, args.seconds, warmup_s=args.warmup,
                              echo_window_us=args.echo_window_us,
                              engine_window_us=args.engine_window_us, record_dir=record_dir)
            if relay == "engine" and args.record and not result["recording"]:
                print("recording not available yet")
            print(format_row(result), flush=True)
            recorded = result["relay_counters"].get("recording")
            if isinstance(recorded, dict):
                dropped = result["relay_counters"].get("engine", {}).get(
                    "recording_frames_dropped", 0)
                print(f"      recorded {recorded['files']} stereo WAV files, "
                      f"{recorded['recorded_s']:.0f} s of audio = "
                      f"{recorded['coverage_pct']:.1f}% of the calls' time; "
                      f"{dropped} frames dropped by the writer", flush=True)
            rows.append(result)
            step[relay] = result
        summary.append((pairs, step[echoes[0]], step.get("engine")))
        judged = step.get("engine", step[echoes[0]])
        if judged["loss_pct"] > LOSS_LIMIT_PCT or overran(judged):
            print(f"stopping: {judged['relay']} lost {judged['loss_pct']:.3f}% at N={pairs}"
                  + (" (tick overruns)" if overran(judged) else ""))
            break
    print_summary(summary, echoes[0])
    return rows


def print_summary(summary: list[tuple[int, dict[str, Any], dict[str, Any] | None]],
                  baseline: str) -> None:
    print(f"\n{'N':>5} {'engine CPU%':>11} {'loss %':>7} {'lat p50/p99 ms':>15} "
          f"{'jit p50/p99 ms':>15} {'us/pkt eng':>10} {'us/pkt ' + baseline:>18} {'ratio':>6}")
    for pairs, echo, engine in summary:
        if engine is None:
            print(f"{pairs:>5} {'-':>11} {'-':>7} {'-':>15} {'-':>15} {'-':>10} "
                  f"{echo['us_per_packet']:>18.2f} {'-':>6}")
            continue
        ratio = engine["us_per_packet"] / echo["us_per_packet"]
        print(f"{pairs:>5} {engine['cpu_pct']:>11.1f} {engine['loss_pct']:>7.3f} "
              f"{engine['latency_p50_ms']:>7.3f}/{engine['latency_p99_ms']:<7.3f} "
              f"{engine['jitter_p50_ms']:>7.3f}/{engine['jitter_p99_ms']:<7.3f} "
              f"{engine['us_per_packet']:>10.2f} {echo['us_per_packet']:>18.2f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
