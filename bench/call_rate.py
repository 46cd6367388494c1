"""Call setup rate (calls/s) through the real switch: SIPp as a PRI gateway calls DIDs
routed to agent extensions, which are SIPp UAS instances the harness registered with
digest auth; media is anchored (the switch opens engine legs and rewrites both SDPs,
no RTP flows). Rising rates, a fixed number of calls per step; prints each step and the
highest rate with zero failed calls.

    .venv/bin/python bench/call_rate.py                          # full run
    .venv/bin/python bench/call_rate.py --smoke                  # one short step (tests)
    .venv/bin/python bench/call_rate.py --rates 300,400 --calls 6000 --hold-ms 2000
    .venv/bin/python bench/call_rate.py --rates 300 --profile /tmp/switch.prof
    CALL_RATE_KEEP=/tmp/cr .venv/bin/python bench/call_rate.py   # keep logs, SIPp errors

The switch runs pinned to core 0, SIPp to core 1 (when the machine has both). A call is
INVITE (SDP) / 100 / 180 / 200 (SDP) / ACK, `--hold-ms` of talk, BYE / 200 from the
gateway side; the switch relays the BYE to the agent. Post-dial delay is measured by the
gateway SIPp from sending the INVITE to receiving the 180 and the 200 (its response time
durations, every sample traced with -trace_rtt). Switch CPU % is utime+stime of the
switch process over the step (all threads: event loop and media worker), RSS at the end
of the step and its peak so far (VmHWM).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.sip import Response, build_authorization  # noqa: E402
from tests.integration.peers import UdpClient, free_udp_port  # noqa: E402
from tests.integration.switch_process import SwitchProcess  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent / "sipp"
GATEWAY_SCENARIO = SCENARIOS / "gateway_uac.xml"
AGENT_SCENARIO = SCENARIOS / "agent_uas.xml"
KEEPALIVE_SCENARIO = SCENARIOS / "gateway_options.xml"  # out of call: OPTIONS -> 200
# A gateway is trusted by its source host: SIPp-as-gateway on .2, agents on .1 (which
# must authenticate like any phone). Linux routes all of 127.0.0.0/8 to lo.
GATEWAY_HOST = "127.0.0.2"
AGENT_HOST = "127.0.0.1"
SWITCH_CPU, LOAD_CPU = 0, 1
NICE = -20  # for the switch and SIPp alike (when allowed), see pin()
FIRST_DID, FIRST_EXTENSION = 4008001001, 3001
PASSWORD = "bench-agent-pass"
# Clear of the kernel's ephemeral range (32768-60999), where SIPp and the harness bind;
# two engine legs per call, RTP and RTCP each.
RTP_PORTS = "10000-31999"
SPANS = 200  # 6,000 E1 channels: the trunk is never what limits the rate
RECV_TIMEOUT_MS = 15_000  # a call still unanswered after this counts as failed
SMOKE_RATE, SMOKE_CALLS, SMOKE_HOLD_MS = 20, 40, 100


@dataclass
class Step:
    rate: int
    calls: int = 0
    ok: int = 0
    failed: int = 0  # calls the gateway (the PSTN caller) saw fail
    agent_failed: int = 0  # calls an agent's SIPp saw fail (often the same calls)
    retrans: int = 0
    achieved: float = 0.0
    pdd_180_ms: tuple[float, float] = (0.0, 0.0)  # p50, p99
    pdd_200_ms: tuple[float, float] = (0.0, 0.0)
    cpu_pct: float = 0.0
    cpu_ms_per_call: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def clean(self) -> bool:
        """Every call set up and cleared, on both sides."""
        return self.ok == self.calls and not self.failed and not self.agent_failed


def config_text(gateway_port: int, agents: int) -> str:
    routes = "".join(
        f'[[routes]]\ndid = "{FIRST_DID + n}"\nfrom_trunk = "pstn"\n'
        f'extension = "{FIRST_EXTENSION + n}"\n' for n in range(agents))
    return (f'[rtp]\nports = "{RTP_PORTS}"\n'
            # Session timers off: SIPp would have to answer refresh re-INVITEs. A short
            # drain: a call left over when the bench stops is hung up, not waited for.
            "[calls]\nsession_expires_s = 0\ndrain_timeout_s = 2\n"
            "[recording]\nenabled = false\n"
            f'[sip.bans]\nwhitelist = ["{AGENT_HOST}", "{GATEWAY_HOST}"]\n'
            f'[[gateways]]\nname = "sipp"\nhost = "{GATEWAY_HOST}"\nport = {gateway_port}\n'
            f"spans = {SPANS}\n"
            '[[trunk_groups]]\nname = "pstn"\ngateways = ["sipp"]\n' + routes)


def free_port_on(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def register(switch_port: int, extension: str, contact_port: int) -> None:
    """REGISTER `extension` with digest auth from a harness socket on AGENT_HOST, its
    Contact naming the SIPp UAS port (the switch then sends INVITEs there)."""
    client = UdpClient()
    try:
        uri, call_id = f"sip:{AGENT_HOST}", uuid.uuid4().hex
        authorization = ""
        for cseq in (1, 2):
            via = f"SIP/2.0/UDP {AGENT_HOST}:{client.port};branch=z9hG4bK{uuid.uuid4().hex}"
            lines = [f"REGISTER {uri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
                     f"From: <sip:{extension}@{AGENT_HOST}>;tag=bench{extension}",
                     f"To: <sip:{extension}@{AGENT_HOST}>", f"Call-ID: {call_id}",
                     f"CSeq: {cseq} REGISTER",
                     f"Contact: <sip:{extension}@{AGENT_HOST}:{contact_port}>",
                     "Expires: 3600", *([authorization] if authorization else []),
                     "Content-Length: 0"]
            response = client.request(("\r\n".join(lines) + "\r\n\r\n").encode(), switch_port)
            if not isinstance(response, Response):
                raise RuntimeError(f"no answer to REGISTER for {extension}")
            challenge = response.headers.get("WWW-Authenticate")
            if response.status == 401 and challenge is not None and cseq == 1:
                authorization = "Authorization: " + build_authorization(
                    challenge, "REGISTER", uri, extension, password=PASSWORD,
                    cnonce=uuid.uuid4().hex[:8], nc=1)
            elif response.status == 200:
                return
            else:
                raise RuntimeError(f"REGISTER {extension}: {response.status}")
    finally:
        client.close()


def pin(pid: int, cpu: int | None) -> None:
    """Pin every thread of `pid` to `cpu` (None: leave it) and raise its priority to
    NICE; threads started later inherit both. The machine may be shared: a switch or a
    SIPp that loses its core to a neighbour measures the neighbour (a starved SIPp
    trips its watchdog and fails calls the switch handled)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
            if cpu is not None:
                os.sched_setaffinity(int(task), {cpu})
            os.setpriority(os.PRIO_PROCESS, int(task), NICE)


def can_pin() -> bool:
    return {SWITCH_CPU, LOAD_CPU} <= os.sched_getaffinity(0)


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def udp_bound(host: str, port: int) -> bool:
    packed = "".join(f"{int(octet):02X}" for octet in reversed(host.split(".")))
    wanted = f"{packed}:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == wanted for line in list(f)[1:])


def last_stats(path: Path) -> dict[str, str]:
    """The final row of a SIPp -trace_stat file, by column name."""
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def stat(stats: dict[str, str], column: str) -> int:
    try:
        return int(stats.get(column, "0"))
    except ValueError:
        return 0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def read_rtt(workdir: Path) -> dict[str, list[tuple[float, float]]]:
    """SIPp's -trace_rtt samples: {rtd name: [(time since start ms, response ms)]}."""
    samples: dict[str, list[tuple[float, float]]] = {}
    for path in workdir.glob("gateway_uac_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) == 3:
                samples.setdefault(parts[2], []).append((float(parts[0]), float(parts[1])))
        path.unlink()
    return samples


class Bench:
    def __init__(self, sipp: str, switch: SwitchProcess, workdir: Path, gateway_port: int,
                 agent_ports: list[int], hold_ms: int) -> None:
        self.sipp = sipp
        self.switch = switch
        self.workdir = workdir
        self.gateway_port = gateway_port
        self.agent_ports = agent_ports
        self.hold_ms = hold_ms
        self.load_cpu = LOAD_CPU if can_pin() else None

    def _start_agents(self) -> list[subprocess.Popen[bytes]]:
        agents = []
        for n, port in enumerate(self.agent_ports):
            stats = self.workdir / f"agent{n}.csv"
            stats.unlink(missing_ok=True)
            agents.append(subprocess.Popen(
                [self.sipp, "-sf", str(AGENT_SCENARIO), "-i", AGENT_HOST,
                 "-p", str(port), "-nostdin", "-trace_stat", "-stf", str(stats),
                 "-trace_err", "-error_file", str(self.workdir / f"agent{n}_errors.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir))
            pin(agents[-1].pid, self.load_cpu)
        deadline = time.monotonic() + 10.0
        while not all(udp_bound(AGENT_HOST, port) for port in self.agent_ports):
            if time.monotonic() > deadline or any(a.poll() is not None for a in agents):
                self._stop_agents(agents)
                raise RuntimeError("the agents' SIPp did not start")
            time.sleep(0.01)  # bench harness, not a test: wait for SIPp to bind
        return agents

    def _stop_agents(self, agents: list[subprocess.Popen[bytes]]) -> None:
        for agent in agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGUSR1)  # SIPp: finish open calls, then exit
        for agent in agents:
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()

    def run_step(self, rate: int, calls: int) -> Step:
        step = Step(rate, calls)
        dids = self.workdir / "dids.csv"
        dids.write_text("SEQUENTIAL\n" + "".join(
            f"{FIRST_DID + n};\n" for n in range(len(self.agent_ports))))
        gateway_stats = self.workdir / "gateway.csv"
        gateway_stats.unlink(missing_ok=True)
        process = self.switch.process
        assert process is not None
        agents = self._start_agents()
        cpu_before = cpu_s(process.pid)
        started = time.monotonic()
        gateway = None
        try:
            gateway = subprocess.Popen(
                [self.sipp, f"127.0.0.1:{self.switch.udp_port}",
                 "-sf", str(GATEWAY_SCENARIO), "-oocsf", str(KEEPALIVE_SCENARIO),
                 "-inf", str(dids), "-i", GATEWAY_HOST,
                 "-p", str(self.gateway_port), "-m", str(calls), "-r", str(rate),
                 "-rp", "1000", "-d", str(self.hold_ms),
                 "-l", str(rate * (self.hold_ms // 1000 + 20) + 100),
                 "-recv_timeout", str(RECV_TIMEOUT_MS),
                 "-timeout", f"{int(calls / rate + self.hold_ms / 1000 + 60)}s",
                 "-nostdin", "-trace_stat", "-stf", str(gateway_stats),
                 "-trace_rtt", "-rtt_freq", "1",
                 "-trace_err", "-error_file", str(self.workdir / "gateway_errors.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir)
            pin(gateway.pid, self.load_cpu)
            returncode = gateway.wait()
        finally:
            elapsed = time.monotonic() - started
            cpu = cpu_s(process.pid) - cpu_before
            if gateway is not None and gateway.poll() is None:  # interrupted
                gateway.kill()
                gateway.wait()
            self._stop_agents(agents)
        stats = last_stats(gateway_stats)
        step.ok = stat(stats, "SuccessfulCall(C)")
        step.failed = stat(stats, "FailedCall(C)")
        if returncode not in (0, 1) or step.ok + step.failed < calls:
            step.failed = calls - step.ok  # SIPp gave up (its -timeout) or died
        step.retrans = stat(stats, "Retransmissions(C)")
        for n in range(len(self.agent_ports)):
            agent = last_stats(self.workdir / f"agent{n}.csv")
            step.agent_failed += stat(agent, "FailedCall(C)")
            step.retrans += stat(agent, "Retransmissions(C)")
        samples = read_rtt(self.workdir)
        ringing = [ms for _, ms in samples.get("ringing", [])]
        answered = samples.get("answer", [])
        step.pdd_180_ms = (percentile(ringing, 0.5), percentile(ringing, 0.99))
        step.pdd_200_ms = (percentile([ms for _, ms in answered], 0.5),
                           percentile([ms for _, ms in answered], 0.99))
        if len(answered) > 1:
            # Calls answered per second, first answer to last: the setup rate the switch
            # sustained, without the last call's hold time diluting it.
            span_s = (answered[-1][0] - answered[0][0]) / 1000
            step.achieved = (len(answered) - 1) / span_s if span_s > 0 else 0.0
        step.cpu_pct = 100.0 * cpu / elapsed if elapsed else 0.0
        step.cpu_ms_per_call = 1000.0 * cpu / calls
        step.rss_mb, step.peak_rss_mb = memory_mb(process.pid)
        return step


# CPU per call when issue 4 landed (commit 4c95b9a, this 2-core machine, 300-392 calls/s
# offered): 2.9-3.4 ms. Printed beside each step's figure so a regression shows.
PREVIOUS_CPU_MS_PER_CALL = 3.4
PREVIOUS_LABEL = "issue 4 landing (4c95b9a): 2.9-3.4 ms"

HEADER = (f"{'target/s':>8} {'done/s':>7} {'calls':>6} {'failed':>6} {'agent':>5} "
          f"{'retrans':>7} "
          f"{'180 p50/p99 ms':>14} {'200 p50/p99 ms':>14} {'CPU %':>6} {'CPU ms/call':>11} "
          f"{'vs prev':>7} {'RSS MiB':>7} {'peak':>6}")


def format_step(s: Step) -> str:
    return (f"{s.rate:>8} {s.achieved:>7.0f} {s.calls:>6} {s.failed:>6} {s.agent_failed:>5} "
            f"{s.retrans:>7} "
            f"{s.pdd_180_ms[0]:>6.0f}/{s.pdd_180_ms[1]:<7.0f} "
            f"{s.pdd_200_ms[0]:>6.0f}/{s.pdd_200_ms[1]:<7.0f} {s.cpu_pct:>6.0f} "
            f"{s.cpu_ms_per_call:>11.2f} "
            f"{s.cpu_ms_per_call / PREVIOUS_CPU_MS_PER_CALL:>6.2f}x "
            f"{s.rss_mb:>7.0f} {s.peak_rss_mb:>6.0f}")


class DiagnosticSwitch(SwitchProcess):
    """The switch, optionally instrumented through a sitecustomize on its PYTHONPATH
    (switch code untouched): cProfile of the main thread (the event loop: SIP, call
    control, CDR queueing and SQLAlchemy), dumped at exit; CDR events dropped instead of
    written; per-call INFO log lines off. The last two only measure what they cost."""

    profile_path: Path | None = None
    drop_cdrs = False
    quiet_log = False

    def _hook(self) -> str:
        lines = []
        if self.quiet_log:
            lines += ["import logging", "logging.disable(logging.INFO)"]
        if self.drop_cdrs:
            lines += ["from apps.cdr_writer import CdrWriter",
                      "CdrWriter.subscribe = lambda self, bus: None"]
        if self.profile_path is not None:
            lines += ["import atexit, cProfile", "_p = cProfile.Profile()", "_p.enable()",
                      "atexit.register(lambda: (_p.disable(), "
                      f"_p.dump_stats({str(self.profile_path)!r})))"]
        return "".join(line + "\n" for line in lines)

    def env(self) -> dict[str, str]:
        env = super().env()
        hook = self._hook()
        if not hook:
            return env
        directory = self.workdir / "diagnostic_hook"
        directory.mkdir(exist_ok=True)
        (directory / "sitecustomize.py").write_text(hook)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(directory), str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env


def main(argv: list[str] | None = None) -> list[Step]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short step at 20 calls/s")
    parser.add_argument("--rates", default="100,200,300,400,500,600")
    parser.add_argument("--calls", type=int, default=3000, help="calls per step")
    parser.add_argument("--hold-ms", type=int, default=1000, help="talk time of each call")
    parser.add_argument("--agents", type=int, default=2, help="SIPp UAS agent extensions")
    parser.add_argument("--all-steps", action="store_true",
                        help="keep going after a step with failures")
    parser.add_argument("--profile", type=Path, help="cProfile the switch into this file")
    parser.add_argument("--drop-cdrs", action="store_true",
                        help="diagnostic: the switch drops CDR events (what do CDRs cost?)")
    parser.add_argument("--quiet-log", action="store_true",
                        help="diagnostic: the switch logs no INFO lines (what does the "
                             "per-call log cost?)")
    args = parser.parse_args(argv)
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp not found: apt-get install sip-tester (./test.sh does)")
    rates = [SMOKE_RATE] if args.smoke else [int(r) for r in args.rates.split(",")]
    calls: int = SMOKE_CALLS if args.smoke else args.calls
    hold_ms: int = SMOKE_HOLD_MS if args.smoke else args.hold_ms
    agents = args.agents
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the switch
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(os.environ.get("CALL_RATE_KEEP", tmp))
        workdir.mkdir(exist_ok=True)
        gateway_port = free_port_on(GATEWAY_HOST)
        agent_ports = [free_udp_port() for _ in range(agents)]
        switch = DiagnosticSwitch(workdir, config_text(gateway_port, agents))
        switch.profile_path = args.profile.resolve() if args.profile else None
        switch.drop_cdrs, switch.quiet_log = args.drop_cdrs, args.quiet_log
        for n in range(agents):
            switch.add_user(f"agent{FIRST_EXTENSION + n}", PASSWORD, str(FIRST_EXTENSION + n))
        switch.start()
        try:
            assert switch.process is not None
            pin(switch.process.pid, SWITCH_CPU if can_pin() else None)
            for n, port in enumerate(agent_ports):
                register(switch.udp_port, str(FIRST_EXTENSION + n), port)
            pinned = f"switch on core {SWITCH_CPU}, SIPp on core {LOAD_CPU}" if can_pin() \
                else "not pinned (fewer than 2 cores)"
            print(f"call setup rate: {calls} calls per step, {hold_ms} ms hold, "
                  f"{agents} agents, {pinned}")
            print(f"CPU ms/call 'vs prev': against {PREVIOUS_CPU_MS_PER_CALL} ms, "
                  f"{PREVIOUS_LABEL} (below 1.00x is cheaper)")
            print(HEADER)
            for rate in rates:
                step = run_step_checked(Bench(sipp, switch, workdir, gateway_port,
                                              agent_ports, hold_ms), rate, calls)
                steps.append(step)
                print(format_step(step), flush=True)
                if not args.all_steps and (not step.clean or step.achieved < 0.9 * rate):
                    break  # failures, or the switch no longer keeps up
        finally:
            code = switch.stop()
            errors = [line for line in switch.log().splitlines()
                      if " ERROR " in line or "Traceback" in line]
            if errors or code != 0:
                print(f"switch exit {code}; {len(errors)} error lines in its log, first: "
                      f"{errors[:3]}")
    clean = [s for s in steps if s.clean]
    if clean:
        best = max(clean, key=lambda s: s.achieved)
        print(f"highest rate with zero failed calls: {best.achieved:.0f} calls/s (target "
              f"{best.rate}/s, {best.retrans} retransmissions, post-dial delay p50/p99 "
              f"{best.pdd_180_ms[0]:.0f}/{best.pdd_180_ms[1]:.0f} ms to 180, "
              f"{best.pdd_200_ms[0]:.0f}/{best.pdd_200_ms[1]:.0f} ms to 200)")
    else:
        print("no step completed without failed calls")
    return steps


def run_step_checked(bench: Bench, rate: int, calls: int) -> Step:
    if not bench.switch.alive():
        raise RuntimeError(f"the switch died; log:\n{bench.switch.log()[-3000:]}")
    return bench.run_step(rate, calls)


if __name__ == "__main__":
    main()
