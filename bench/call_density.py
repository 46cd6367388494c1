"""End-to-end call density: N concurrent PSTN calls with audio both ways through the
real switch to emulated agents, every call recorded; the largest N with < 0.1% loss.

    .venv/bin/python bench/call_density.py                         # 100 .. 2000 calls
    .venv/bin/python bench/call_density.py --calls 200,400 --hold 30
    .venv/bin/python bench/call_density.py --smoke                 # 5 calls, 3 s (tests)

Per step, three processes besides this harness:
  - the switch (`callcenter serve`, [recording] enabled, [calls] session_expires_s = 0)
    pinned to CPU 0 (--switch-cpu), one media worker as serve starts it;
  - the PSTN: a GatewayEmulator on 127.0.0.2, configured as [[gateways]] gw1 with
    enough E1 spans, placing N inbound calls to N DIDs (4008000000 + i), each routed by
    a [[routes]] did entry to an agent extension (20000 + i);
  - the agents: a second GatewayEmulator on 127.0.0.3 that answers every call; the
    harness registers every extension (digest REGISTER from 127.0.0.3, Contact at that
    emulator's port, which the registrar honours for another port on the same host).
Both emulators run pinned to CPU 1 (--emulator-cpu); each plays a tone toward the
switch on every call (1 kHz from the PSTN, 400 Hz from the agent) and records what it
hears. Calls are placed at --cps per second, then held: --warmup seconds unmeasured,
--hold seconds measured, then hung up (BYE, Q.850 cause 16) at the same pace.

Columns: loss % is RFC 3550 loss (expected by sequence number minus received) at the
receiving emulator's legs over the measured window, per direction (pstn>agent: what
the agents heard of the PSTN's tone; agent>pstn the other way); the relay keeps the
sender's sequence numbers (offset only), so a packet lost anywhere on the way (the
switch's socket, the emulator's) shows as a gap. tx/exp % and rx/exp % are the
packets sent and received both ways against 50 per second per stream: tx below 100
means the emulators sent late; rx well below tx means packets vanished (a silent
stream has no gaps, so the detail line also gives received/sent per direction).
sw CPU % is the scheduler time of all the switch's threads over the window; RSS
is its resident size at the end of the window. emu CPU % is both emulators together
(on one core: near 100 means the emulators, not the switch, are the limit); ovr is
their media engines' tick overruns (ticks late by more than a period) in the window.
other% is the work of anything else on the switch's / the emulators' core in the
window (a shared machine: rows with a large figure are suspect). rec is the switch's
recordings that hold at least 95% of the time every call was up,
out of N. Stepping stops at the first step with loss >= 0.1%, an unanswered call, a
stream that stopped or a missing recording.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.pri_gateway.emulator import GatewayEmulator  # noqa: E402
from switch.sip import Response, build_authorization, parse_message  # noqa: E402
from tests.integration.switch_process import SwitchProcess  # noqa: E402

DEFAULT_CALLS = [100, 200, 400, 600, 800, 1000, 1200, 1500, 2000]
LOSS_LIMIT_PCT = 0.1
PACKETS_PER_S = 50  # 20 ms ptime, each direction of each call
RECORDING_MIN_FRACTION = 0.95
# Streams count as flowing when the receivers got more than this share of what the
# senders sent in the window (the two sides are counted a few ms apart): a dead stream
# has no sequence gaps, so loss alone would call it perfect.
FLOWING_MIN_PCT = 99.0
EMULATOR_FULL_RATE_PCT = 99.5  # below: the emulators could not send on time
EMULATOR_OVERRUNS_MAX_FRACTION = 0.01  # more late ticks than this: emulators saturated
SWITCH_HOST = "127.0.0.1"
PSTN_HOST = "127.0.0.2"  # trusted as gateway gw1 by source address
AGENT_HOST = "127.0.0.3"  # agents: neither a gateway nor the switch's own address
# Disjoint from the switch's [rtp] ports (20000-29999) and the kernel's ephemeral range.
MEDIA_PORTS = {"pstn": (10000, 14999), "agents": (15000, 19999)}
TONE_HZ = {"pstn": 1000.0, "agents": 400.0}
CHANNELS_PER_SPAN = 30
PASSWORD = "density-bench-1"
REALM = "callcenter"
# The switch's SIP socket keeps the kernel's default receive buffer (about 100 small
# datagrams on loopback): larger bursts lose some while its loop is busy.
REGISTER_BATCH = 50
REGISTER_RETRANSMIT_S = 0.5  # RFC 3261 T1
REGISTER_ATTEMPTS = 7  # about 64*T1 with the waits, as Timer F
SNAPSHOT_LEAD_S = 0.2  # time for both emulators to get the command before the instant
SMOKE_CALLS, SMOKE_HOLD_S, SMOKE_WARMUP_S = 5, 3.0, 0.5


def did(i: int) -> str:
    return f"400800{i:04d}"


def extension(i: int) -> str:
    return str(20000 + i)


def caller_number(i: int) -> str:
    return f"1380013{i:04d}"


# -- /proc figures


def task_cpu_ns(pid: int) -> int:
    """On-CPU time of every thread of `pid` (ns, scheduler accounting, not ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError), \
                open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def core_busy_s() -> dict[int, float]:
    """Non-idle seconds of each core since boot (anyone's work, irq and softirq)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values[:8]]
                out[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf(
                    "SC_CLK_TCK")
    return out


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pin(pid: int, cpu: int) -> None:
    """Every thread of `pid` on `cpu` (threads started later inherit it)."""
    if cpu not in os.sched_getaffinity(0):
        return  # fewer cores than asked for: leave the scheduler alone
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), {cpu})


def raise_fd_limit() -> None:
    """Two sockets per media leg: children inherit the raised limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- an emulator host process (`call_density.py --host pstn|agents`)


def leg_totals(emulator: GatewayEmulator) -> dict[str, int]:
    """Summed RTP counters of the calls that are up now."""
    # The emulator has no public accessor for its engine; the bench reads leg counters.
    engine = emulator._require_engine()
    totals = {"calls": 0, "received": 0, "sent": 0, "lost": 0}
    for call in emulator.calls.values():
        if call.leg is None or not call.answered.is_set() or call.ended.is_set():
            continue
        stats = engine.leg_stats(call.leg)
        totals["calls"] += 1
        for key in ("received", "sent", "lost"):
            totals[key] += int(stats[key])
    return totals


async def wait_until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def place_calls(emulator: GatewayEmulator, message: dict[str, Any]) -> dict[str, Any]:
    emulator.switch = (message["switch"][0], int(message["switch"][1]))
    start = time.monotonic()
    calls = []
    for caller, called in message["calls"]:
        calls.append(await emulator.place_call(caller, called, audio=("tone", TONE_HZ["pstn"])))
        await asyncio.sleep(1.0 / message["cps"])
    await wait_until(lambda: all(c.answered.is_set() or c.ended.is_set() for c in calls),
                     message["timeout_s"])
    answered = [c for c in calls if c.answered.is_set() and not c.ended.is_set()]
    failed = sorted({str(c.final_status) for c in calls if c not in answered})
    return {"answered": len(answered), "failed": failed, "setup_s": time.monotonic() - start}


async def hang_up(emulator: GatewayEmulator, message: dict[str, Any]) -> dict[str, Any]:
    up = [c for c in emulator.calls.values() if c.placed and not c.ended.is_set()]
    for call in up:
        call.hangup()
        await asyncio.sleep(1.0 / message["cps"])
    ended = await wait_until(lambda: all(c.ended.is_set() for c in up), message["timeout_s"])
    return {"hung_up": len(up), "all_ended": ended}


async def run_host(args: argparse.Namespace) -> None:
    role = args.host
    os.sched_setaffinity(0, {args.cpu} & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    raise_fd_limit()
    recordings = tempfile.mkdtemp(prefix=f"call-density-{role}-")
    emulator = GatewayEmulator(
        PSTN_HOST if role == "pstn" else AGENT_HOST, 0,
        spans=math.ceil(args.count / CHANNELS_PER_SPAN) + 1, media_ports=MEDIA_PORTS[role],
        recordings_dir=recordings, answer_audio=("tone", TONE_HZ["agents"]))
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with emulator:
            say({"port": emulator.address[1], "pid": os.getpid()})
            while line := await stdin.readline():
                message = json.loads(line)
                command = message["cmd"]
                if command == "call":
                    say(await place_calls(emulator, message))
                elif command == "snap":
                    # Both emulators read their counters at one agreed monotonic instant
                    # (CLOCK_MONOTONIC is system-wide), not when the command arrives.
                    await asyncio.sleep(max(0.0, message["at"] - time.monotonic()))
                    engine_stats = emulator._require_engine().stats()
                    say({"legs": leg_totals(emulator), "cpu_ns": task_cpu_ns(os.getpid()),
                         "tick_overruns": int(engine_stats.get("tick_overruns", 0))})
                elif command == "hangup":
                    say(await hang_up(emulator, message))
                elif command == "settle":  # the agents: every call ended by the switch
                    ok = await wait_until(
                        lambda: all(c.ended.is_set() for c in emulator.calls.values()),
                        message["timeout_s"])
                    say({"all_ended": ok, "calls": len(emulator.calls)})
                elif command == "quit":
                    break
    finally:
        shutil.rmtree(recordings, ignore_errors=True)  # what the emulators heard
    say({"bye": True})


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# -- the harness side of a host


@contextlib.contextmanager
def host(role: str, count: int, cpu: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--host", role, "--count", str(count),
         "--cpu", str(cpu)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=ROOT)
    with proc:
        try:
            yield proc
        except BaseException:
            proc.kill()  # failed half-way: leave no emulator behind
            raise


def ask(proc: subprocess.Popen[str], role: str, message: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
    if message is not None:
        tell(proc, message)
    return hear(proc, role)


def tell(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def hear(proc: subprocess.Popen[str], role: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{role} emulator exited with status {proc.wait()}")
    answer: dict[str, Any] = json.loads(line)
    return answer


# -- the switch


def make_users_db(directory: Path, count: int) -> Path:
    """A database with `count` agents; argon2 kept cheap (web logins are not measured)."""
    from argon2 import PasswordHasher

    from apps import Database, UserService, upgrade_database

    path = directory / "callcenter.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"

    async def add() -> None:
        await upgrade_database(url)
        db = await Database.connect(url)
        try:
            users = UserService(db, REALM, password_hasher=PasswordHasher(
                time_cost=1, memory_cost=8, parallelism=1))
            for i in range(count):
                await users.add_user(f"agent{i}", PASSWORD, extension(i))
        finally:
            await db.close()

    asyncio.run(add())
    return path


def switch_config(calls: int, gateway_port: int) -> str:
    lines = ["[sip.bans]", f'whitelist = ["{PSTN_HOST}", "{AGENT_HOST}"]',
             "[calls]", "session_expires_s = 0",
             "[recording]", "enabled = true",
             "[[gateways]]", 'name = "gw1"', f'host = "{PSTN_HOST}"', f"port = {gateway_port}",
             f"spans = {math.ceil(calls / CHANNELS_PER_SPAN) + 1}",
             "[[trunk_groups]]", 'name = "pstn"', 'gateways = ["gw1"]']
    for i in range(calls):
        lines += ["[[routes]]", f'did = "{did(i)}"', 'from_trunk = "pstn"',
                  f'extension = "{extension(i)}"']
    return "\n".join(lines) + "\n"


def register_agents(switch_port: int, agents_port: int, count: int) -> int:
    """Digest REGISTER for every extension from AGENT_HOST, in batches, Contact at the
    agents' emulator (another port on the same host, so the registrar sends INVITEs
    there). Unanswered requests are retransmitted as a UA would (RFC 3261 §17.1.2.2);
    returns how many retransmissions that took."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((AGENT_HOST, 0))
        port = sock.getsockname()[1]
        target = (SWITCH_HOST, switch_port)
        retransmissions = 0

        def request(ext: str, call_id: str, cseq: int, authorization: str = "") -> bytes:
            lines = [f"REGISTER sip:{SWITCH_HOST} SIP/2.0",
                     f"Via: SIP/2.0/UDP {AGENT_HOST}:{port};branch=z9hG4bK{uuid.uuid4().hex}"
                     ";rport", "Max-Forwards: 70",
                     f"From: <sip:{ext}@{SWITCH_HOST}>;tag={uuid.uuid4().hex[:8]}",
                     f"To: <sip:{ext}@{SWITCH_HOST}>", f"Call-ID: {call_id}",
                     f"CSeq: {cseq} REGISTER", f"Contact: <sip:{ext}@{AGENT_HOST}:{agents_port}>",
                     "Expires: 3600"]
            if authorization:
                lines.append(f"Authorization: {authorization}")
            return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

        def transact(requests: dict[str, bytes]) -> dict[str, Response]:
            """Send every request; the final response to each, by Call-ID."""
            nonlocal retransmissions
            got: dict[str, Response] = {}
            for data in requests.values():
                sock.sendto(data, target)
            for _attempt in range(REGISTER_ATTEMPTS):
                sock.settimeout(REGISTER_RETRANSMIT_S)
                with contextlib.suppress(TimeoutError):
                    while len(got) < len(requests):
                        message = parse_message(sock.recv(65535))
                        if isinstance(message, Response) and message.call_id in requests \
                                and message.status >= 200:
                            got[message.call_id] = message
                if len(got) == len(requests):
                    return got
                for call_id, data in requests.items():
                    if call_id not in got:
                        sock.sendto(data, target)
                        retransmissions += 1
            raise RuntimeError(f"{len(requests) - len(got)} REGISTERs never answered")

        for first in range(0, count, REGISTER_BATCH):
            batch = {uuid.uuid4().hex: extension(i)
                     for i in range(first, min(count, first + REGISTER_BATCH))}
            challenges = transact({call_id: request(ext, call_id, 1)
                                   for call_id, ext in batch.items()})
            authorized = {}
            for call_id, ext in batch.items():
                value = challenges[call_id].headers.get("WWW-Authenticate")
                if challenges[call_id].status != 401 or value is None:
                    raise RuntimeError(f"REGISTER {ext}: {challenges[call_id].status}")
                authorization = build_authorization(
                    value, "REGISTER", f"sip:{SWITCH_HOST}", ext, password=PASSWORD,
                    cnonce=uuid.uuid4().hex[:8], nc=1)
                authorized[call_id] = request(ext, call_id, 2, authorization)
            for call_id, response in transact(authorized).items():
                if response.status != 200:
                    raise RuntimeError(f"REGISTER {batch[call_id]}: {response.status}")
        return retransmissions


def recordings_of(data_dir: Path, min_s: float) -> dict[str, Any]:
    durations = []
    for path in sorted((data_dir / "recordings").rglob("*.wav")):
        with wave.open(str(path), "rb") as wav:
            durations.append(wav.getnframes() / wav.getframerate())
    return {"files": len(durations), "recorded_s": sum(durations),
            "ok": sum(1 for d in durations if d >= RECORDING_MIN_FRACTION * min_s),
            "shortest_s": min(durations, default=0.0)}


def log_problems(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]


# -- one step


def run_step(n: int, args: argparse.Namespace, users_db: Path, workroot: Path,
             ) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"step-{n}-", dir=workroot))
    (workdir / "data").mkdir()
    shutil.copy(users_db, workdir / "data" / "callcenter.sqlite3")
    row: dict[str, Any] = {"calls": n}
    with host("agents", n, args.emulator_cpu) as agents, \
            host("pstn", n, args.emulator_cpu) as pstn:
        agents_port = hear(agents, "agents")["port"]
        pstn_info = hear(pstn, "pstn")
        switch = SwitchProcess(workdir, switch_config(n, pstn_info["port"]), realm=REALM)
        switch.start()
        try:
            assert switch.process is not None
            pid = switch.process.pid
            pin(pid, args.switch_cpu)
            row["register_retransmissions"] = register_agents(switch.udp_port, agents_port, n)
            setup_ns = task_cpu_ns(pid)
            placed = ask(pstn, "pstn", {
                "cmd": "call", "switch": [SWITCH_HOST, switch.udp_port], "cps": args.cps,
                "timeout_s": 30.0,
                "calls": [[caller_number(i), did(i)] for i in range(n)]})
            row.update(answered=placed["answered"], failed=placed["failed"],
                       setup_s=placed["setup_s"],
                       setup_switch_cpu_s=(task_cpu_ns(pid) - setup_ns) / 1e9)
            all_up = time.monotonic()
            time.sleep(args.warmup)
            before = snapshot(pid, pstn, agents)
            time.sleep(args.hold)
            after = snapshot(pid, pstn, agents)
            row["rss_mb"] = rss_mb(pid)
            hold_s = time.monotonic() - all_up
            ask(pstn, "pstn", {"cmd": "hangup", "cps": args.cps, "timeout_s": 30.0})
            settled = ask(agents, "agents", {"cmd": "settle", "timeout_s": 30.0})
            row["agents_all_ended"] = settled["all_ended"]
            for proc, role in ((pstn, "pstn"), (agents, "agents")):
                ask(proc, role, {"cmd": "quit"})
        finally:
            switch.stop()
    row.update(measure(before, after, {"switch": args.switch_cpu,
                                       "emulator": args.emulator_cpu}))
    row["recordings"] = recordings_of(workdir / "data", hold_s)
    row["hold_s"] = hold_s
    row["log_problems"] = log_problems(switch.log())
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return row


def snapshot(pid: int, pstn: subprocess.Popen[str], agents: subprocess.Popen[str],
             ) -> dict[str, Any]:
    at = time.monotonic() + SNAPSHOT_LEAD_S
    tell(pstn, {"cmd": "snap", "at": at})
    tell(agents, {"cmd": "snap", "at": at})
    time.sleep(max(0.0, at - time.monotonic()))
    switch_ns = task_cpu_ns(pid)
    wall = time.monotonic()
    return {"wall": wall, "switch_ns": switch_ns, "cores": core_busy_s(),
            "pstn": hear(pstn, "pstn"), "agents": hear(agents, "agents")}


def measure(before: dict[str, Any], after: dict[str, Any], cpu_of: dict[str, int],
            ) -> dict[str, Any]:
    window_s = after["wall"] - before["wall"]

    def delta(side: str, key: str) -> int:
        value: int = after[side]["legs"][key] - before[side]["legs"][key]
        return value

    def loss_pct(receiver: str) -> float:
        lost, received = delta(receiver, "lost"), delta(receiver, "received")
        return 100.0 * lost / (lost + received) if lost + received > 0 else 100.0

    received = delta("pstn", "received") + delta("agents", "received")
    sent = delta("pstn", "sent") + delta("agents", "sent")
    streams = after["pstn"]["legs"]["calls"] + after["agents"]["legs"]["calls"]
    emu_ns = sum(after[s]["cpu_ns"] - before[s]["cpu_ns"] for s in ("pstn", "agents"))
    switch_s = (after["switch_ns"] - before["switch_ns"]) / 1e9

    def other_pct(cpu: int, own_s: float) -> float:
        """Work on a pinned core by anyone but the processes pinned there (this is a
        shared machine: rows with a large figure are suspect)."""
        busy = after["cores"].get(cpu, 0.0) - before["cores"].get(cpu, 0.0)
        return float(100.0 * max(0.0, busy - own_s) / window_s)

    return {
        "window_s": window_s,
        "switch_core_other_pct": other_pct(cpu_of["switch"], switch_s),
        "emulator_core_other_pct": other_pct(cpu_of["emulator"], emu_ns / 1e9),
        "loss_to_agent_pct": loss_pct("agents"),
        "loss_to_pstn_pct": loss_pct("pstn"),
        # What the receivers got against what the senders sent in the same window.
        "delivered_to_agent_pct": 100.0 * delta("agents", "received")
        / max(1, delta("pstn", "sent")),
        "delivered_to_pstn_pct": 100.0 * delta("pstn", "received")
        / max(1, delta("agents", "sent")),
        "rx_of_expected_pct": 100.0 * received / max(1.0, streams * PACKETS_PER_S * window_s),
        # Below 100: the emulators' media engines sent late (their core is saturated).
        "tx_of_expected_pct": 100.0 * sent / max(1.0, streams * PACKETS_PER_S * window_s),
        "switch_cpu_pct": 100.0 * (after["switch_ns"] - before["switch_ns"]) / 1e9 / window_s,
        "emulator_cpu_pct": 100.0 * emu_ns / 1e9 / window_s,
        "emulator_overruns": sum(after[s]["tick_overruns"] - before[s]["tick_overruns"]
                                 for s in ("pstn", "agents")),
        "calls_up_at_end": min(after["pstn"]["legs"]["calls"],
                               after["agents"]["legs"]["calls"]),
    }


def clean(row: dict[str, Any]) -> bool:
    return bool(row["answered"] == row["calls"] and row["calls_up_at_end"] == row["calls"]
            and row["loss_to_agent_pct"] < LOSS_LIMIT_PCT
            and row["loss_to_pstn_pct"] < LOSS_LIMIT_PCT
            and min(row["delivered_to_agent_pct"], row["delivered_to_pstn_pct"])
            > FLOWING_MIN_PCT
            and row["recordings"]["ok"] == row["calls"])


HEADER = (f"{'N':>5} {'up':>5} {'loss % pstn>agent':>17} {'agent>pstn':>10} {'tx/exp %':>8} "
          f"{'rx/exp %':>8} "
          f"{'sw CPU %':>8} {'RSS MB':>7} {'emu CPU %':>9} {'ovr':>5} {'rec':>11} "
          f"{'setup s':>7} {'other%':>7}")


def format_row(r: dict[str, Any]) -> str:
    rec = f"{r['recordings']['ok']}/{r['calls']}"
    other = f"{r['switch_core_other_pct']:.0f}/{r['emulator_core_other_pct']:.0f}"
    return (f"{r['calls']:>5} {r['calls_up_at_end']:>5} {r['loss_to_agent_pct']:>17.3f} "
            f"{r['loss_to_pstn_pct']:>10.3f} {r['tx_of_expected_pct']:>8.2f} "
            f"{r['rx_of_expected_pct']:>8.2f} "
            f"{r['switch_cpu_pct']:>8.1f} {r['rss_mb']:>7.1f} {r['emulator_cpu_pct']:>9.1f} "
            f"{r['emulator_overruns']:>5} {rec:>11} {r['setup_s']:>7.1f} {other:>7}")


def format_detail(r: dict[str, Any]) -> str:
    rec = r["recordings"]
    text = (f"      window {r['window_s']:.1f} s; received/sent "
            f"{r['delivered_to_agent_pct']:.3f}% pstn>agent, "
            f"{r['delivered_to_pstn_pct']:.3f}% agent>pstn; {rec['files']} recordings, "
            f"{rec['recorded_s']:.0f} s of audio, shortest {rec['shortest_s']:.1f} s "
            f"of {r['hold_s']:.1f} s up; setup took the switch "
            f"{r['setup_switch_cpu_s']:.1f} s of CPU; "
            f"{r['register_retransmissions']} REGISTER retransmissions")
    if r["failed"]:
        text += f"; unanswered: {', '.join(r['failed'])}"
    if r["log_problems"]:
        text += f"\n      switch log: {len(r['log_problems'])} error lines, first: " \
                f"{r['log_problems'][0][:160]}"
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")],
                        default=DEFAULT_CALLS, help="concurrent calls per step, comma-separated")
    parser.add_argument("--hold", type=float, default=20.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="unmeasured seconds once every call is up")
    parser.add_argument("--cps", type=float, default=100.0,
                        help="calls placed (and hung up) per second")
    parser.add_argument("--switch-cpu", type=int, default=0)
    parser.add_argument("--emulator-cpu", type=int, default=1)
    parser.add_argument("--keep", action="store_true",
                        help="keep each step's switch directory (log, CDRs, recordings)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"{SMOKE_CALLS} calls held {SMOKE_HOLD_S:g} s (test suite)")
    parser.add_argument("--host", choices=["pstn", "agents"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.hold, args.warmup = [SMOKE_CALLS], SMOKE_HOLD_S, SMOKE_WARMUP_S
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.host:
        asyncio.run(run_host(args))
        return []
    raise_fd_limit()
    if len(os.sched_getaffinity(0)) < 2:
        print("fewer than two CPUs: the switch and the emulators share a core")
    rows: list[dict[str, Any]] = []
    workroot = Path(tempfile.mkdtemp(prefix="call-density-"))
    try:
        users_db = make_users_db(workroot, max(args.calls))
        print(HEADER, flush=True)
        for n in args.calls:
            row = run_step(n, args, users_db, workroot)
            rows.append(row)
            print(format_row(row), flush=True)
            print(format_detail(row), flush=True)
            if not clean(row):
                print(f"stopping at N={n}: " + ", ".join(why_not_clean(row)))
                break
    finally:
        if args.keep:
            print(f"kept {workroot} (a directory per step: switch.log, data/)")
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    print_verdict(rows)
    return rows


def why_not_clean(row: dict[str, Any]) -> list[str]:
    reasons = []
    if row["answered"] < row["calls"] or row["calls_up_at_end"] < row["calls"]:
        reasons.append(f"{row['calls'] - min(row['answered'], row['calls_up_at_end'])} "
                       "calls not up")
    for key, way in (("loss_to_agent_pct", "pstn>agent"), ("loss_to_pstn_pct", "agent>pstn")):
        if row[key] >= LOSS_LIMIT_PCT:
            reasons.append(f"{row[key]:.3f}% loss {way}")
    delivered = min(row["delivered_to_agent_pct"], row["delivered_to_pstn_pct"])
    if delivered <= FLOWING_MIN_PCT:
        reasons.append(f"only {delivered:.1f}% of the packets sent arrived")
    if row["recordings"]["ok"] < row["calls"]:
        reasons.append(f"{row['calls'] - row['recordings']['ok']} recordings missing or short")
    return reasons


def print_verdict(rows: list[dict[str, Any]]) -> None:
    good = [r for r in rows if clean(r)]
    if good:
        best = max(good, key=lambda r: r["calls"])
        print(f"largest N with < {LOSS_LIMIT_PCT}% loss both ways, every call up and "
              f"recorded: {best['calls']} calls (switch {best['switch_cpu_pct']:.0f}% CPU, "
              f"{best['rss_mb']:.0f} MB RSS)")
    else:
        print(f"no step ran with < {LOSS_LIMIT_PCT}% loss and every call up and recorded")
    behind = [r for r in rows if emulators_behind(r)]
    if behind:
        first = behind[0]
        print(f"the emulators fell behind from N={first['calls']}: they sent "
              f"{first['tx_of_expected_pct']:.2f}% of 50 packets/s per stream "
              f"({first['emulator_overruns']} late ticks, {first['emulator_cpu_pct']:.0f}% "
              f"of their core) while the switch used {first['switch_cpu_pct']:.0f}% of its "
              "core: from there the load is the emulators' limit, not the switch's")


def emulators_behind(row: dict[str, Any]) -> bool:
    ticks = 2 * PACKETS_PER_S * row["window_s"]  # two engines, one tick per 20 ms
    return bool(row["tx_of_expected_pct"] < EMULATOR_FULL_RATE_PCT
                or row["emulator_overruns"] > EMULATOR_OVERRUNS_MAX_FRACTION * ticks)


if __name__ == "__main__":
    main()
