"""Pure-Python twin of switch/sip/_scan.pyx, used when the extension is not built.

Same results for every input (tests/sip/test_scan.py checks): a tuple for the clean
messages the C scanner accepts, None for everything else (message.py then runs the
full parser). The fast validators are the regexes of headers.py, restricted to ASCII.
"""

from __future__ import annotations

import re

from switch.sip.headers import (
    EXACT_NAMES,
    KNOWN_NAMES,
    NAME_ADDR_FAST,
    SIP_URI_FAST,
    VIA_FAST,
    canonical_name,
)

ScanResult = tuple[str | None, str, int, str, tuple[bytes, bytes] | None, bytes]

_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
                      "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"})
_REQUEST_URI = re.compile(SIP_URI_FAST)
_TOKEN = re.compile(rb"[A-Za-z0-9\-.!%*_+`'~]+")
_STATUS = re.compile(rb"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?", re.S)
_CSEQ = re.compile(rb"([0-9]{1,9}) ([A-Za-z0-9\-.!%*_+`'~]+)")
_CALL_ID = re.compile(rb"[\x21-\x7e]+")
_NUMBER = re.compile(rb"[0-9]{1,10}")
_WATCH = {"Via": 1, "From": 2, "To": 3, "Call-ID": 4, "CSeq": 5, "Content-Length": 6,
          "Max-Forwards": 7, "Expires": 8, "Contact": 9, "Route": 9, "Record-Route": 9}
_LIMITS = {7: 255, 8: 2**32 - 1}


def via_fast(value: bytes) -> bool:
    return value.isascii() and VIA_FAST.fullmatch(value.decode("ascii")) is not None


def name_addr_fast(value: bytes) -> bool:
    return value.isascii() and NAME_ADDR_FAST.fullmatch(value.decode("ascii")) is not None


def request_uri_fast(value: bytes) -> bool:
    return value.isascii() and _REQUEST_URI.fullmatch(value.decode("ascii")) is not None


def _check_value(kind: int, value: bytes, method: bytes | None) -> int | None:
    """-1 (or the number, for numeric headers) when the value is fast-valid, else None."""
    if kind == 1:
        return -1 if via_fast(value) else None
    if kind in (2, 3, 9):
        return -1 if b"," not in value and name_addr_fast(value) else None
    if kind == 4:
        return -1 if _CALL_ID.fullmatch(value) else None
    if kind == 5:
        m = _CSEQ.fullmatch(value)
        if m is None:
            return None
        if method is None:
            return -1 if m.group(2).decode() in _METHODS else None
        return -1 if m.group(2) == method else None
    if _NUMBER.fullmatch(value) is None:
        return None
    number = int(value)
    return number if number <= _LIMITS.get(kind, number) else None


def scan_message(data: bytes, stream: bool) -> ScanResult | None:
    """(method, uri_text, status, reason, raw, body) for a clean message, or None
    (see _scan.pyx)."""
    if not data or data[:1] in (b"\r", b"\n"):
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        return None
    start = lines[0]
    method: str | None = None
    method_bytes: bytes | None = None
    uri_text = reason = ""
    status = 0
    if start[:4] == b"SIP/":
        m = _STATUS.fullmatch(start)
        if m is None:
            return None
        status = int(m.group(1))
        reason = (m.group(2) or b"").decode("utf-8", "surrogateescape")
    else:
        parts = start.split(b" ")
        if (len(parts) != 3 or parts[0].decode("latin-1") not in _METHODS
                or not request_uri_fast(parts[1]) or parts[2] != b"SIP/2.0"):
            return None
        method_bytes = parts[0]
        method, uri_text = parts[0].decode(), parts[1].decode()
    seen: set[int] = set()
    canonical = True
    content_length = -1
    cl_at = -1
    for index, line in enumerate(lines[1:], 1):
        if line[:1] in (b" ", b"\t"):
            return None
        name, sep, raw_value = line.partition(b":")
        if not sep or not name:
            return None
        canon = EXACT_NAMES.get(name.decode("latin-1"))
        if canon is not None:
            same_name = canon in KNOWN_NAMES and canon.encode() == name
        else:
            if _TOKEN.fullmatch(name) is None:
                return None
            canon = canonical_name(name.decode())
            same_name = canon == name.decode()
        value = raw_value.strip(b" \t")
        if canonical and not (raw_value[:1] == b" " and raw_value[1:] == value and value
                              and same_name):
            canonical = False
        kind = _WATCH.get(canon, 0)
        if kind:
            if kind not in (1, 9) and kind in seen:
                return None
            seen.add(kind)
            number = _check_value(kind, value, method_bytes)
            if number is None:
                return None
            if kind == 6:
                content_length, cl_at = number, index
    if not {1, 2, 3, 4, 5} <= seen:
        return None
    rest = data[head_end + 4 :]
    if content_length >= 0:
        if content_length > len(rest):
            return None
        body = rest[:content_length]
    elif stream:
        return None
    else:
        body = rest
    if not canonical:
        return method, uri_text, status, reason, None, body
    headers = [line + b"\r\n" for line in lines[1:]]
    if cl_at < 0:
        return method, uri_text, status, reason, (b"".join(headers), b""), body
    return (method, uri_text, status, reason,
            (b"".join(headers[: cl_at - 1]), b"".join(headers[cl_at:])), body)


def header_lines(data: bytes) -> list[tuple[str, str]]:
    """The (canonical name, value) header lines of a message scan_message accepted."""
    wire: list[tuple[str, str]] = []
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            break
        text = name.decode("utf-8", "surrogateescape")
        wire.append((EXACT_NAMES.get(text) or canonical_name(text),
                     value.strip(b" \t").decode("utf-8", "surrogateescape")))
    return wire
