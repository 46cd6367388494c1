"""SIP parse + serialize throughput beside pyVoIP's SIPMessage parser, same messages,
same run. Prints a table: messages/s for each and the ratio.

    .venv/bin/python bench/sip_parse.py            # full run (a few seconds per row)
    .venv/bin/python bench/sip_parse.py --smoke    # one short pass (the test suite)

Ours does parse_message() (validating Via, From, To, CSeq, Call-ID, Max-Forwards,
Contact, Content-Length; the Cython scanner switch/sip/_scan.pyx takes clean messages,
the pure-Python parser the rest) and then serialize(), which reuses the received header
lines of a message nobody modified; pyVoIP only parses. pyVoIP 1.6.8 is a
phone and refuses REGISTER ("Unable to decipher SIP request"), so that row has no
ratio; the 401 challenge a phone does parse stands beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.sip import parse_message  # noqa: E402

FIXTURES = ROOT / "tests" / "sip" / "fixtures" / "messages"
MESSAGES = [
    ("INVITE with SDP", "invite_sdp.sip"),
    ("200 OK with SDP", "ok_sdp.sip"),
    ("REGISTER with auth", "register_auth.sip"),
    ("401 two challenges", "unauthorized_two_challenges.sip"),
    ("BYE", "bye.sip"),
]


def load_pyvoip() -> Callable[[bytes], object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyVoIP.VoIP  # noqa: F401  (pyVoIP.SIP needs its package imported first)
        from pyVoIP.SIP import SIPMessage
    return SIPMessage


def rate(func: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Messages per second: best of three timed batches sized to `seconds`."""
    func(data)
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            func(data)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10 or n >= 1 << 22:
            break
        n *= 2
    n = max(1, int(n * seconds / 3 / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            func(data)
        best = min(best, time.perf_counter() - start)
    return n / best


def ours(data: bytes) -> bytes:
    return parse_message(data).serialize()


def run(seconds: float) -> list[tuple[str, float, float | None]]:
    pyvoip = load_pyvoip()
    rows: list[tuple[str, float, float | None]] = []
    for label, name in MESSAGES:
        data = (FIXTURES / name).read_bytes()
        our_rate = rate(ours, data, seconds)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pyvoip(data)
                their_rate: float | None = rate(pyvoip, data, seconds)
        except Exception:  # pyVoIP rejects messages a phone never receives
            their_rate = None
        rows.append((label, our_rate, their_rate))
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, float, float | None]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one short pass")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per row")
    args = parser.parse_args(argv)
    rows = run(0.05 if args.smoke else args.seconds)
    print(f"{'message':<22} {'ours msg/s':>12} {'pyVoIP msg/s':>13} {'ratio':>7}")
    ratios = []
    for label, our_rate, their_rate in rows:
        if their_rate is None:
            print(f"{label:<22} {our_rate:>12,.0f} {'rejects it':>13} {'-':>7}")
        else:
            ratios.append(our_rate / their_rate)
            print(f"{label:<22} {our_rate:>12,.0f} {their_rate:>13,.0f} "
                  f"{our_rate / their_rate:>6.1f}x")
    if ratios:
        geo = 1.0
        for r in ratios:
            geo *= r
        print(f"{'geometric mean ratio':<22} {'':>12} {'':>13} "
              f"{geo ** (1 / len(ratios)):>6.1f}x  (floor: 5x)")
    return rows


if __name__ == "__main__":
    main()
