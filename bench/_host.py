"""One side of the relay density benchmark, run as its own process by relay_density.py.

    _host.py loadgen --pairs N --cpu 1      the 2N phones (bench/loadgen.pyx LoadGen)
    _host.py echo --variant plain --cpu 0   the plain C echo relay (kernel-cost baseline)
    _host.py engine --cpu 0 [--record DIR]  switch.media.engine.MediaEngine, workers=1

The parent talks line-delimited JSON over stdin/stdout:
  loadgen: prints {"ports"}, reads {"legs", "relay_pid", "warmup_s", "seconds",
           "drain_s"}, runs, prints its results and exits.
  relays:  read {"phones"}, print {"ports", "pid"}, relay until stdin reaches EOF,
           print their own counters and exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import sys
import time
import wave
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(ROOT))

import loadgen  # noqa: E402  (bench/loadgen.pyx, built by relay_density.ensure_built)

# Wide enough for 2 x 3,000 legs on even ports (RTCP on +1) and clear of the kernel's
# ephemeral range (32768-60999), where the phones and the echo relay bind.
ENGINE_PORT_RANGE = (10000, 31999)


# Nice level for both sides: the machine may be shared, and a relay that loses its core
# to someone else's build measures the neighbour, not the relay. Threads started later
# (the engine's workers) inherit it.
NICE = -20


def prepare(cpu: int) -> None:
    """Many sockets: raise the descriptor limit to the hard limit. Pin to one core."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, NICE)


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def hear() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("parent closed stdin before sending its message")
    message: dict[str, Any] = json.loads(line)
    return message


def bind_loopback(count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    return sockets


def task_cpu_ns(pid: int) -> int:
    """On-CPU time of every thread of `pid` (ns, from the scheduler, not tick-sampled)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended; its time left with it
    return total


def cpu_lines() -> dict[str, list[int]]:
    """/proc/stat per-CPU counters in clock ticks: user nice system idle iowait irq
    softirq steal ..."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                out[name] = [int(v) for v in values]
    return out


def snapshot(relay_pid: int) -> dict[str, Any]:
    return {"wall": time.monotonic(), "relay_ns": task_cpu_ns(relay_pid),
            "own_s": loadgen.process_cpu_s(), "cpus": cpu_lines()}


def core_busy_s(before: dict[str, Any], after: dict[str, Any], cpu: int) -> float:
    """Non-idle time of one core (anyone's work, irq and softirq included)."""
    name = f"cpu{cpu}"
    if name not in before["cpus"] or name not in after["cpus"]:
        return 0.0
    delta: list[int] = [a - b for a, b in zip(after["cpus"][name], before["cpus"][name],
                                              strict=True)]
    idle = delta[3] + delta[4]  # idle + iowait
    return (sum(delta[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_loadgen(args: argparse.Namespace) -> None:
    prepare(args.cpu)
    phones = bind_loopback(2 * args.pairs)
    say({"ports": [s.getsockname()[1] for s in phones]})
    plan = hear()
    for phone, leg_port in zip(phones, plan["legs"], strict=True):
        phone.connect(("127.0.0.1", leg_port))
    gen = loadgen.LoadGen([s.fileno() for s in phones], tick_us=args.tick_us)
    gen.start_clock()
    gen.run(plan["warmup_s"])
    before = snapshot(plan["relay_pid"])
    gen.run(plan["seconds"], count=True)
    after = snapshot(plan["relay_pid"])
    gen.drain(plan["drain_s"])
    result = gen.results()
    result.update({
        "window_s": after["wall"] - before["wall"],
        # Scheduler time of all the relay's threads; it includes the softirq work of
        # delivering what the relay sends over loopback (run in the sender's context).
        "relay_task_cpu_s": (after["relay_ns"] - before["relay_ns"]) / 1e9,
        "relay_core_busy_s": core_busy_s(before, after, plan["relay_cpu"]),
        "loadgen_cpu_s": after["own_s"] - before["own_s"],
        "loadgen_core_busy_s": core_busy_s(before, after, args.cpu),
    })
    say(result)
    for phone in phones:
        phone.close()


def run_echo(args: argparse.Namespace) -> None:
    prepare(args.cpu)
    phones = hear()["phones"]
    legs = bind_loopback(len(phones))
    say({"ports": [s.getsockname()[1] for s in legs], "pid": os.getpid()})
    variant = {"plain": loadgen.ECHO_PLAIN, "mmsg": loadgen.ECHO_MMSG}[args.variant]
    counters = loadgen.echo_relay([s.fileno() for s in legs], phones, variant,
                                  sys.stdin.fileno(), args.window_us)
    say(counters)


def run_engine(args: argparse.Namespace) -> None:
    prepare(args.cpu)
    from switch.media import MediaEngine

    phones = hear()["phones"]
    engine = MediaEngine(workers=1, port_range=ENGINE_PORT_RANGE, bind_host="127.0.0.1",
                         rtp_timeout_s=300.0, stats_interval_s=5.0,
                         wakeup_window_us=args.window_us)
    engine.start()
    legs = []
    for pair in range(len(phones) // 2):
        group = f"call-{pair}"
        a = engine.open_leg(group=group)
        b = engine.open_leg(group=group)
        engine.set_remote(a, "127.0.0.1", phones[2 * pair], payload_type=0)
        engine.set_remote(b, "127.0.0.1", phones[2 * pair + 1], payload_type=0)
        engine.bridge(a, b)
        legs += [a, b]
    recording = start_recording(engine, legs, args.record) if args.record else False
    engine.sync()  # commands are queued: every bridge (and tap) in place before the load
    recording_started = time.monotonic()
    say({"ports": [engine.leg_port(leg) for leg in legs], "pid": os.getpid(),
         "recording": recording})
    while sys.stdin.readline():
        pass
    counters: dict[str, Any] = {"legs": len(legs)}
    stats = [engine.leg_stats(leg) for leg in legs]
    for key in stats[0] if stats else ():
        counters[key] = sum(s[key] for s in stats if isinstance(s[key], int))
    engine_stats = getattr(engine, "stats", None)
    if callable(engine_stats):
        overall = engine_stats()
        if isinstance(overall, dict):
            counters["engine"] = {k: v for k, v in overall.items()
                                  if isinstance(v, int | float | str)}
    engine.stop()  # finalises every recording's WAV header
    if recording:
        counters["recording"] = recorded_audio(
            args.record, len(legs) // 2, time.monotonic() - recording_started)
    say(counters)


def recorded_audio(directory: str, calls: int, elapsed_s: float) -> dict[str, float]:
    """What the WAV files hold, against what one call recorded for `elapsed_s` would."""
    seconds = 0.0
    for path in Path(directory).glob("call-*.wav"):
        with wave.open(str(path), "rb") as wav:
            seconds += wav.getnframes() / wav.getframerate()
    return {"files": len(list(Path(directory).glob("call-*.wav"))), "recorded_s": seconds,
            "coverage_pct": 100.0 * seconds / (calls * elapsed_s) if calls else 0.0}


def start_recording(engine: Any, legs: list[int], directory: str) -> bool:
    """Record every call (stereo WAV) if this engine can; False if it cannot yet."""
    record = getattr(engine, "record", None)
    if not callable(record):
        return False
    for pair in range(len(legs) // 2):
        record(legs[2 * pair], legs[2 * pair + 1], str(Path(directory) / f"call-{pair}.wav"))
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    gen = sub.add_parser("loadgen")
    gen.add_argument("--pairs", type=int, required=True)
    gen.add_argument("--cpu", type=int, default=1)
    gen.add_argument("--tick-us", type=int, default=200)
    echo = sub.add_parser("echo")
    echo.add_argument("--variant", choices=["plain", "mmsg"], default="plain")
    echo.add_argument("--window-us", type=int, default=0)
    echo.add_argument("--cpu", type=int, default=0)
    engine = sub.add_parser("engine")
    engine.add_argument("--cpu", type=int, default=0)
    engine.add_argument("--record", default="")
    engine.add_argument("--window-us", type=int, default=0)
    args = parser.parse_args()
    {"loadgen": run_loadgen, "echo": run_echo, "engine": run_engine}[args.role](args)


if __name__ == "__main__":
    main()
