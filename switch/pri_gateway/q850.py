"""Q.850 cause values <-> SIP status codes (RFC 3398), and the Reason header that
carries them across legs (RFC 3326, RFC 6432).

Both directions are the RFC's own tables, kept as data. Where the RFC has no row we
fall back to a documented default per cause class (ISUP -> SIP) or per status class
(SIP -> ISUP); see `sip_status_for_cause` and `q850_cause_for_status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

from switch.sip import LocalProtocolError, RemoteProtocolError

# ITU-T Q.850 Table 1: cause value -> name (wording of the Recommendation, ASCII dashes).
CAUSE_NAMES: Final[Mapping[int, str]] = MappingProxyType({
    1: "Unallocated (unassigned) number",
    2: "No route to specified transit network",
    3: "No route to destination",
    4: "Send special information tone",
    5: "Misdialled trunk prefix",
    6: "Channel unacceptable",
    7: "Call awarded and being delivered in an established channel",
    8: "Preemption",
    9: "Preemption - circuit reserved for reuse",
    14: "QoR: ported number",
    16: "Normal call clearing",
    17: "User busy",
    18: "No user responding",
    19: "No answer from user (user alerted)",
    20: "Subscriber absent",
    21: "Call rejected",
    22: "Number changed",
    23: "Redirection to new destination",
    25: "Exchange routing error",
    26: "Non-selected user clearing",
    27: "Destination out of order",
    28: "Invalid number format (address incomplete)",
    29: "Facility rejected",
    30: "Response to STATUS ENQUIRY",
    31: "Normal, unspecified",
    34: "No circuit/channel available",
    38: "Network out of order",
    39: "Permanent frame mode connection out of service",
    40: "Permanent frame mode connection operational",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    43: "Access information discarded",
    44: "Requested circuit/channel not available",
    46: "Precedence call blocked",
    47: "Resource unavailable, unspecified",
    49: "Quality of Service not available",
    50: "Requested facility not subscribed",
    53: "Outgoing calls barred within CUG",
    55: "Incoming calls barred within CUG",
    57: "Bearer capability not authorized",
    58: "Bearer capability not presently available",
    62: "Inconsistency in designated outgoing access information and subscriber class",
    63: "Service or option not available, unspecified",
    65: "Bearer capability not implemented",
    66: "Channel type not implemented",
    69: "Requested facility not implemented",
    70: "Only restricted digital information bearer capability is available",
    79: "Service or option not implemented, unspecified",
    81: "Invalid call reference value",
    82: "Identified channel does not exist",
    83: "A suspended call exists, but this call identity does not",
    84: "Call identity in use",
    85: "No call suspended",
    86: "Call having the requested call identity has been cleared",
    87: "User not member of CUG",
    88: "Incompatible destination",
    90: "Non-existent CUG",
    91: "Invalid transit network selection",
    95: "Invalid message, unspecified",
    96: "Mandatory information element is missing",
    97: "Message type non-existent or not implemented",
    98: "Message not compatible with call state or message type non-existent or not implemented",
    99: "Information element/parameter non-existent or not implemented",
    100: "Invalid information element contents",
    101: "Message not compatible with call state",
    102: "Recovery on timer expiry",
    103: "Parameter non-existent or not implemented - passed on",
    110: "Message with unrecognized parameter discarded",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
})

# Names the rest of the switch uses in code.
NORMAL_CALL_CLEARING: Final = 16
USER_BUSY: Final = 17
CALL_REJECTED: Final = 21
NORMAL_UNSPECIFIED: Final = 31
NO_CIRCUIT_AVAILABLE: Final = 34
TEMPORARY_FAILURE: Final = 41
INTERWORKING_UNSPECIFIED: Final = 127

MAX_CAUSE: Final = 127  # Q.850 §2.2.5: the cause value is 7 bits


class CauseClass(Enum):
    """Q.850 §2.2.5: the three high bits of the cause value."""

    NORMAL_EVENT = 0  # classes 000 and 001: causes 0-31
    RESOURCE_UNAVAILABLE = 2  # 32-47
    SERVICE_NOT_AVAILABLE = 3  # 48-63
    SERVICE_NOT_IMPLEMENTED = 4  # 64-79
    INVALID_MESSAGE = 5  # 80-95
    PROTOCOL_ERROR = 6  # 96-111
    INTERWORKING = 7  # 112-127


# RFC 3398 §7.2.4.1 (REL received, final response sent). None is the RFC's "---":
# cause 16 clears an answered call with BYE (or an unanswered one with CANCEL).
ISUP_CAUSE_TO_SIP_STATUS: Final[Mapping[int, int | None]] = MappingProxyType({
    1: 404, 2: 404, 3: 404,
    16: None,
    17: 486, 18: 408, 19: 480, 20: 480,
    21: 403,  # 603 when the cause location is "user", see USER_LOCATION_STATUS
    22: 410,  # 301 when a diagnostic carries the new number (we never get one on PRI)
    23: 410, 26: 404, 27: 502, 28: 484, 29: 501, 31: 480,
    34: 503, 38: 503, 41: 503, 42: 503, 47: 503,
    55: 403, 57: 403, 58: 503,
    65: 488, 70: 488, 79: 501,
    87: 403, 88: 503,
    102: 504, 111: 500, 127: 500,
})

# RFC 3398 §7.2.4.1 note (+): with cause location "user" the 6xx form may be used.
USER_LOCATION_STATUS: Final[Mapping[int, int]] = MappingProxyType({21: 603})

# Causes RFC 3398 does not list answer with their class's row. The class default is
# the row of the class's "unspecified" cause (Q.850 §2.2.7.1 treats an unknown cause
# as the unspecified cause of its class): 31 -> 480, 47 -> 503, 79 -> 501, 111 -> 500,
# 127 -> 500. RFC 3398 has no row for 63 or 95; we answer 503 (the class is "service
# or option not available", like 58) and 500 (a broken message, like 111).
CLASS_DEFAULT_STATUS: Final[Mapping[CauseClass, int]] = MappingProxyType({
    CauseClass.NORMAL_EVENT: 480,
    CauseClass.RESOURCE_UNAVAILABLE: 503,
    CauseClass.SERVICE_NOT_AVAILABLE: 503,
    CauseClass.SERVICE_NOT_IMPLEMENTED: 501,
    CauseClass.INVALID_MESSAGE: 500,
    CauseClass.PROTOCOL_ERROR: 500,
    CauseClass.INTERWORKING: 500,
})

# RFC 3398 §8.2.6.1 (final response received, REL sent). None is the RFC's "---":
# 487 has no mapping (we cancelled; the cause is whatever made us cancel), 488 and
# 606 are mapped "by Warning header", which PRI gateways never act on.
SIP_STATUS_TO_ISUP_CAUSE: Final[Mapping[int, int | None]] = MappingProxyType({
    400: 41, 401: 21, 402: 21, 403: 21, 404: 1, 405: 63, 406: 79, 407: 21,
    408: 102, 410: 22, 413: 127, 414: 127, 415: 79, 416: 127, 420: 127, 421: 127,
    423: 127, 480: 18, 481: 41, 482: 25, 483: 25, 484: 28, 485: 1, 486: 17,
    487: None, 488: None,
    500: 41, 501: 79, 502: 38, 503: 41, 504: 102,
    505: 127,  # printed as a second "504" in RFC 3398; the phrase is 505's
    513: 127,
    600: 17, 603: 21, 604: 1, 606: None,
})

# Statuses without a row (or with "---") fall back to a default per status class.
STATUS_CLASS_DEFAULT_CAUSE: Final[Mapping[int, int]] = MappingProxyType({
    4: NORMAL_UNSPECIFIED,
    5: TEMPORARY_FAILURE,
    6: NORMAL_UNSPECIFIED,
})


def _check_cause(cause: int) -> None:
    if not 0 <= cause <= MAX_CAUSE:
        raise LocalProtocolError(f"Q.850 cause must be 0..{MAX_CAUSE}, got {cause}")


def cause_class(cause: int) -> CauseClass:
    _check_cause(cause)
    return CauseClass(cause >> 4 if cause >= 32 else 0)


def cause_name(cause: int) -> str:
    """The Q.850 name, or "Unknown cause N" for a value the Recommendation leaves free."""
    _check_cause(cause)
    return CAUSE_NAMES.get(cause, f"Unknown cause {cause}")


def sip_status_for_cause(cause: int, *, location_user: bool = False) -> int:
    """The final response to send when the PSTN side released with `cause`.

    Cause 16 has no row (it normally becomes a BYE or CANCEL); when a final response
    is still owed it gets the normal-event default, 480."""
    _check_cause(cause)
    if location_user and cause in USER_LOCATION_STATUS:
        return USER_LOCATION_STATUS[cause]
    status = ISUP_CAUSE_TO_SIP_STATUS.get(cause)
    return status if status is not None else CLASS_DEFAULT_STATUS[cause_class(cause)]


def q850_cause_for_status(status: int) -> int:
    """The cause to release the PSTN side with after a final failure `status`."""
    if not 400 <= status <= 699:
        raise LocalProtocolError(f"only failure statuses 400..699 map to a cause, got {status}")
    cause = SIP_STATUS_TO_ISUP_CAUSE.get(status)
    return cause if cause is not None else STATUS_CLASS_DEFAULT_CAUSE[status // 100]


# ---- Reason header (RFC 3326 §2, RFC 6432) ----------------------------------------

class ReasonHeaderError(RemoteProtocolError):
    """A Reason header value we cannot read; answer 400."""


@dataclass(frozen=True, slots=True)
class ReasonValue:
    """One reason-value: `Q.850;cause=34;text="..."` or `SIP;cause=487`.

    `protocol` is "Q.850" or "SIP" in canonical spelling, other tokens as received."""

    protocol: str
    cause: int | None
    text: str | None = None

    def serialize(self) -> str:
        out = self.protocol
        if self.cause is not None:
            out += f";cause={self.cause}"
        if self.text is not None:
            out += ";text=" + _quote(self.text)
        return out

    def __repr__(self) -> str:
        return f"ReasonValue({self.serialize()!r})"


_CANONICAL_PROTOCOLS: Final = {"q.850": "Q.850", "sip": "SIP"}
# RFC 3326 §2: cause is 1*DIGIT; Q.850 causes fit 7 bits, SIP causes are status codes.
_CAUSE_RANGES: Final[Mapping[str, range]] = MappingProxyType(
    {"Q.850": range(0, MAX_CAUSE + 1), "SIP": range(100, 700)})
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_DIGITS = re.compile(r"[0-9]{1,9}")
_MAX_VALUES = 32  # a Reason header never needs more; bounds the work on hostile input


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_reason(cause: int, text: str | None = None) -> str:
    """`Q.850;cause=34;text="No circuit/channel available"`; text defaults to the
    Q.850 name (omitted for a cause the Recommendation does not name)."""
    _check_cause(cause)
    if text is None:
        text = CAUSE_NAMES.get(cause)
    if text is not None and any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in text):
        raise LocalProtocolError(f"control character in reason text {text!r}")
    return ReasonValue("Q.850", cause, text).serialize()


def _split(value: str, sep: str) -> list[str]:
    """Split on `sep` outside quoted strings (backslash escapes inside them)."""
    parts: list[str] = []
    start = 0
    in_quote = escaped = False
    for i, ch in enumerate(value):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == sep:
            parts.append(value[start:i])
            start = i + 1
    if in_quote:
        raise ReasonHeaderError(f"unterminated quoted string in Reason {value[:80]!r}")
    parts.append(value[start:])
    return parts


def _unquote(text: str) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ReasonHeaderError(f"bad quoted string in Reason {text[:80]!r}")
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 1
            if i == len(body):
                raise ReasonHeaderError(f"bad quoted string in Reason {text[:80]!r}")
            ch = body[i]
        elif ch == '"':
            raise ReasonHeaderError(f"bad quoted string in Reason {text[:80]!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_one(item: str) -> ReasonValue:
    protocol_text, *params = (p.strip(" \t") for p in _split(item, ";"))
    if not _TOKEN.fullmatch(protocol_text):
        raise ReasonHeaderError(f"bad Reason protocol {protocol_text[:40]!r}")
    protocol = _CANONICAL_PROTOCOLS.get(protocol_text.lower(), protocol_text)
    cause: int | None = None
    text: str | None = None
    for param in params:
        name, sep, raw = param.partition("=")
        name = name.strip(" \t").lower()
        raw = raw.strip(" \t")
        if not _TOKEN.fullmatch(name):
            raise ReasonHeaderError(f"bad Reason parameter {param[:40]!r}")
        if name == "cause":
            if not _DIGITS.fullmatch(raw):
                raise ReasonHeaderError(f"bad Reason cause {raw[:40]!r}")
            cause = int(raw)
            allowed = _CAUSE_RANGES.get(protocol)
            if allowed is not None and cause not in allowed:
                raise ReasonHeaderError(f"{protocol} cause {cause} out of range")
        elif name == "text":
            text = _unquote(raw) if raw.startswith('"') else raw
        elif sep and not raw:
            raise ReasonHeaderError(f"empty value for Reason parameter {name!r}")
    return ReasonValue(protocol, cause, text)


def parse_reason(value: str) -> list[ReasonValue]:
    """Every reason-value of a Reason header (one field, or several joined by commas).
    Raises ReasonHeaderError (400) on anything that is not RFC 3326 grammar."""
    items = _split(value, ",")
    if len(items) > _MAX_VALUES:
        raise ReasonHeaderError(f"too many Reason values ({len(items)})")
    return [_parse_one(item.strip(" \t")) for item in items]


def q850_cause_from_reason(values: Iterable[ReasonValue]) -> int | None:
    """The first Q.850 cause among `values` (RFC 6432: a response carries at most one)."""
    for value in values:
        if value.protocol == "Q.850" and value.cause is not None:
            return value.cause
    return None
