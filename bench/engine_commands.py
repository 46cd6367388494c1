"""Media engine commands: what a call's worth of them costs the signalling thread when
each waits for the media worker (the old round trip) and when it is only queued.

    .venv/bin/python bench/engine_commands.py            # 20000 cycles per row
    .venv/bin/python bench/engine_commands.py --cycles 5000
    .venv/bin/python bench/engine_commands.py --smoke    # 300 cycles (the test suite)

A cycle is one call's media commands as call control gives them: open_leg twice (one
group per call, as call control does, or none: then bridge moves a leg between workers),
set_remote on both, bridge, play_tone (ringback), close_leg on both: 8 commands. Both
modes run in the same process on the same engine build; "synchronous" sets the engine's
``_synchronous`` switch, which makes every command wait until the worker has applied it
(an eventfd write, a wake-up and a condition-variable round trip: the behaviour before
commands were queued). Columns: caller µs/cycle is the wall time the calling thread
spends in the 8 methods (what the event loop loses); cycles/s and commands/s count the
same loop; end-to-end cycles/s includes the sync() after every 500 cycles until the
workers have applied everything (queued mode is not just deferring the work); that
catch-up also keeps a worker the machine starves of CPU from holding every port of the
range in closes not yet applied. Best of three runs per row.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.media import MediaEngine  # noqa: E402

PORT_RANGE = (24000, 31999)
COMMANDS_PER_CYCLE = 8
SMOKE_CYCLES = 300
# Caught up with sync() (outside the caller's time) every so many cycles: a worker that
# the machine leaves without a core for a while must not run the port range dry.
CHUNK_CYCLES = 500
REMOTE = ("127.0.0.1", 9)  # discard: tones sent there go nowhere


def run_once(engine: MediaEngine, cycles: int, grouped: bool) -> tuple[float, float]:
    """(seconds in the calling loop, seconds until the workers had applied it all)."""
    host, port = REMOTE
    loop_s = total_s = 0.0
    for first in range(0, cycles, CHUNK_CYCLES):
        start = time.perf_counter()
        for k in range(first, min(first + CHUNK_CYCLES, cycles)):
            group = f"call-{k}" if grouped else None
            a = engine.open_leg(group=group)
            b = engine.open_leg(group=group)
            engine.set_remote(a, host, port)
            engine.set_remote(b, host, port)
            engine.bridge(a, b)
            engine.play_tone(a, "ringback")
            engine.close_leg(a)
            engine.close_leg(b)
            if k % 64 == 0:
                engine.drain_events()  # as the event loop would: releases what is done
        issued = time.perf_counter()
        engine.sync()
        loop_s += issued - start
        total_s += time.perf_counter() - start
    return loop_s, total_s


def measure(cycles: int, workers: int, grouped: bool, synchronous: bool) -> dict[str, Any]:
    engine = MediaEngine(workers=workers, port_range=PORT_RANGE, rtp_timeout_s=300.0)
    engine._synchronous = synchronous
    engine.start()
    try:
        run_once(engine, min(cycles, 200), grouped)  # warm-up
        loop_s, total_s = min(run_once(engine, cycles, grouped) for _ in range(3))
    finally:
        engine.stop()
    return {
        "workers": workers,
        "grouped": grouped,
        "mode": "synchronous" if synchronous else "queued",
        "cycles": cycles,
        "caller_us": loop_s / cycles * 1e6,
        "cycles_per_s": cycles / loop_s,
        "commands_per_s": cycles * COMMANDS_PER_CYCLE / loop_s,
        "end_to_end_per_s": cycles / total_s,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_CYCLES} cycles per row")
    parser.add_argument("--cycles", type=int, default=20000, help="cycles per run")
    args = parser.parse_args(argv)
    cycles = SMOKE_CYCLES if args.smoke else args.cycles
    rows = []
    print(f"{'workers':>7} {'legs':<9} {'mode':<12} {'caller us/cycle':>15} {'cycles/s':>10} "
          f"{'commands/s':>11} {'end-to-end/s':>13} {'ratio':>6}")
    for workers, grouped in ((1, True), (2, True), (2, False)):
        pair = [measure(cycles, workers, grouped, synchronous) for synchronous in (True, False)]
        for row in pair:
            ratio = (f"{row['cycles_per_s'] / pair[0]['cycles_per_s']:5.1f}x"
                     if row["mode"] == "queued" else "")
            print(f"{workers:>7} {'grouped' if grouped else 'moved':<9} {row['mode']:<12} "
                  f"{row['caller_us']:>15.1f} {row['cycles_per_s']:>10,.0f} "
                  f"{row['commands_per_s']:>11,.0f} {row['end_to_end_per_s']:>13,.0f} "
                  f"{ratio:>6}")
        rows += pair
    print("ratio: queued cycles/s over synchronous cycles/s (the calling thread's gain)")
    return rows


if __name__ == "__main__":
    main()
