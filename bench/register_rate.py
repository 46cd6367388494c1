"""REGISTER transactions per second over UDP: SIPp drives digest-authenticated
registrations at rising rates against a real `callcenter serve`; prints each step
and the highest rate with zero failures.

    .venv/bin/python bench/register_rate.py                 # full run
    .venv/bin/python bench/register_rate.py --smoke         # one short step (test suite)
    .venv/bin/python bench/register_rate.py --rates 500,1000,2000 --seconds 10

One registration is two SIP transactions (REGISTER -> 401, REGISTER with
Authorization -> 200), both counted in the transactions/s column.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.peers import free_udp_port  # noqa: E402
from tests.integration.switch_process import SwitchProcess  # noqa: E402

SCENARIO = ROOT / "tests" / "integration" / "sipp" / "register_auth.xml"
PASSWORD = "bench-password-1"


def child_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_step(sipp: str, switch: SwitchProcess, csv: Path, rate: int, seconds: float,
             workdir: Path) -> dict[str, float]:
    total = max(1, int(rate * seconds))
    assert switch.process is not None
    cpu_before = child_cpu_s(switch.process.pid)
    start = time.monotonic()
    result = subprocess.run(
        [sipp, f"127.0.0.1:{switch.udp_port}", "-sf", str(SCENARIO), "-inf", str(csv),
         "-i", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(total), "-r", str(rate),
         "-rp", "1000", "-timeout", f"{int(seconds * 3 + 30)}s", "-nostdin", "-nd",
         "-trace_stat", "-stf", str(workdir / "stat.csv"), "-au", "2000", "-ap", PASSWORD],
        capture_output=True, text=True, cwd=workdir)
    elapsed = time.monotonic() - start
    cpu = child_cpu_s(switch.process.pid) - cpu_before
    failed = _last_stat(workdir / "stat.csv", "FailedCall(C)")
    retrans = _last_stat(workdir / "stat.csv", "Retransmissions(C)")
    succeeded = _last_stat(workdir / "stat.csv", "SuccessfulCall(C)")
    for stale in workdir.glob("stat.csv"):
        stale.unlink()
    if result.returncode not in (0, 1) and failed == 0:
        failed = total - succeeded
    return {"rate": rate, "ok": succeeded, "failed": failed, "retrans": retrans,
            "achieved": succeeded / elapsed if elapsed else 0.0,
            "cpu_pct": 100.0 * cpu / elapsed if elapsed else 0.0}


def _last_stat(path: Path, column: str) -> int:
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    values = lines[-1].split(";")
    try:
        return int(values[header.index(column)])
    except (ValueError, IndexError):
        return 0


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rates", default="250,500,750,1000,1500,2000,3000")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp not found: apt-get install sip-tester (./test.sh does)")
    rates = [50] if args.smoke else [int(r) for r in args.rates.split(",")]
    seconds = 1.0 if args.smoke else args.seconds
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # SIPp keeps a socket per call
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        switch = SwitchProcess(workdir)
        switch.config_text = ("[sip.auth]\nalgorithms = [\"MD5\"]\n"  # SIPp speaks MD5 only
                              "[sip.bans]\nwhitelist = [\"127.0.0.1\"]\n")
        switch.add_user("bench", PASSWORD, "2000")
        csv = workdir / "users.csv"
        csv.write_text("SEQUENTIAL\n2000;\n")
        switch.start()
        try:
            print(f"{'target/s':>9} {'done/s':>8} {'ok':>7} {'failed':>7} {'retrans':>8} "
                  f"{'tx/s':>8} {'switch CPU':>10}")
            for rate in rates:
                row = run_step(sipp, switch, csv, rate, seconds, workdir)
                rows.append(row)
                print(f"{rate:>9} {row['achieved']:>8.0f} {row['ok']:>7.0f} "
                      f"{row['failed']:>7.0f} {row['retrans']:>8.0f} "
                      f"{2 * row['achieved']:>8.0f} {row['cpu_pct']:>9.0f}%", flush=True)
                if row["failed"] or row["achieved"] < 0.8 * rate:
                    break  # failures, or the switch no longer keeps up
        finally:
            switch.stop()
    clean = [r for r in rows if not r["failed"] and r["ok"]]
    if clean:
        best = max(clean, key=lambda r: r["achieved"])
        print(f"highest rate with zero failures: {best['achieved']:.0f} registrations/s "
              f"= {2 * best['achieved']:.0f} REGISTER transactions/s (target "
              f"{best['rate']:.0f}/s, {best['retrans']:.0f} retransmissions)")
    else:
        print("no step completed without failures")
    return rows


if __name__ == "__main__":
    main()
