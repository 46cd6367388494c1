"""SDP session descriptions (RFC 8866): a frozen model, `parse()` and `serialize()`.

Pure data, no I/O. Lines we do not interpret (i=, u=, e=, p=, z=, k=, unknown type
letters, unknown attributes) are kept verbatim so a description survives a round trip;
fixtures from real phones come back byte for byte.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

from switch.sip.errors import RemoteProtocolError

__all__ = [
    "STATIC_PAYLOAD_TYPES", "Attribute", "Bandwidth", "Connection", "Direction",
    "MediaDescription", "Origin", "RtcpAttribute", "RtpMap", "SdpError", "SessionDescription",
    "Timing",
]


class SdpError(RemoteProtocolError):
    """The peer's session description is malformed or unacceptable."""


_UINT = re.compile(r"[0-9]{1,30}")  # bounded: int() refuses huge digit strings anyway
_REAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")  # RFC 8866 §6.4 non-zero-int-or-real
# Extra lines of these types sit before c= (RFC 8866 §5 order: s i u e p c b t r z k a);
# every other kept line goes after the time lines (session) or b= lines (media).
_EARLY_TYPES = frozenset("iuep")
_MEDIA_FORBIDDEN = frozenset("vosuetrz")  # session-only lines (RFC 8866 §5)


def _uint(text: str, what: str, maximum: int | None = None) -> int:
    if _UINT.fullmatch(text) is None or (maximum is not None and int(text) > maximum):
        raise SdpError(f"invalid {what} {text!r}")
    return int(text)


def _fields(value: str, count: int, kind: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise SdpError(f"malformed '{kind}=' line")
    return parts


class Direction(enum.Enum):
    """Media direction attribute (RFC 3264 §5.1), from the describing party's view."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        return _DIRECTION_BY_FLAGS[(sends, receives)]

    def reversed(self) -> Direction:
        """The same stream seen from the other end: sendonly <-> recvonly (RFC 3264 §6.1)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)


_DIRECTION_BY_FLAGS = {
    (True, True): Direction.SENDRECV,
    (True, False): Direction.SENDONLY,
    (False, True): Direction.RECVONLY,
    (False, False): Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


class Attribute(NamedTuple):
    """One a= line: `a=name` (value None) or `a=name:value` (value may be '')."""

    name: str
    value: str | None = None

    def serialize(self) -> str:
        return f"a={self.name}" if self.value is None else f"a={self.name}:{self.value}"


@dataclass(frozen=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>."""

    username: str
    session_id: int
    session_version: int
    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @classmethod
    def parse(cls, value: str) -> Origin:
        user, sess_id, version, net, addr_type, address = _fields(value, 6, "o")
        return cls(user, _uint(sess_id, "session id"), _uint(version, "session version"),
                   address, addr_type, net)

    def serialize(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.network_type} {self.address_type} {self.address}")


@dataclass(frozen=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address>."""

    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @classmethod
    def parse(cls, value: str) -> Connection:
        net, addr_type, address = _fields(value, 3, "c")
        return cls(address, addr_type, net)

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls(address, "IP6" if ":" in address else "IP4")

    @property
    def is_hold(self) -> bool:
        """RFC 2543 hold: c=0.0.0.0, still sent by old phones (RFC 3264 §8.4)."""
        return self.address == "0.0.0.0"

    def serialize(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(frozen=True)
class Bandwidth:
    """b=<bwtype>:<bandwidth>; the unit depends on the type (AS: kbit/s, TIAS: bit/s)."""

    bwtype: str
    value: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        bwtype, sep, amount = value.partition(":")
        if not sep or not bwtype:
            raise SdpError("malformed 'b=' line")
        return cls(bwtype, _uint(amount, "bandwidth"))

    def serialize(self) -> str:
        return f"{self.bwtype}:{self.value}"


@dataclass(frozen=True)
class Timing:
    """t=<start> <stop> and its r= lines (kept verbatim)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Timing:
        start, stop = _fields(value, 2, "t")
        return cls(_uint(start, "start time"), _uint(stop, "stop time"))


@dataclass(frozen=True)
class RtpMap:
    """a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        parts = value.split(maxsplit=1)
        if len(parts) != 2:
            raise SdpError(f"malformed rtpmap {value!r}")
        encoding = parts[1].strip().split("/")
        if len(encoding) not in (2, 3) or not encoding[0]:
            raise SdpError(f"malformed rtpmap {value!r}")
        channels = _uint(encoding[2], "channel count") if len(encoding) == 3 else None
        return cls(_uint(parts[0], "payload type", 127), encoding[0],
                   _uint(encoding[1], "clock rate"), channels)


# RFC 3551 §6 table 4: static payload types usable without an a=rtpmap line.
STATIC_PAYLOAD_TYPES = {
    rtpmap.payload_type: rtpmap
    for rtpmap in (
        RtpMap(0, "PCMU", 8000, 1), RtpMap(3, "GSM", 8000, 1), RtpMap(4, "G723", 8000, 1),
        RtpMap(8, "PCMA", 8000, 1), RtpMap(9, "G722", 8000, 1), RtpMap(18, "G729", 8000, 1),
    )
}


@dataclass(frozen=True)
class RtcpAttribute:
    """a=rtcp:<port> [<nettype> <addrtype> <address>] (RFC 3605)."""

    port: int
    connection: Connection | None = None

    @classmethod
    def parse(cls, value: str) -> RtcpAttribute:
        parts = value.split()
        if len(parts) not in (1, 4):
            raise SdpError(f"malformed rtcp {value!r}")
        connection = Connection(parts[3], parts[2], parts[1]) if len(parts) == 4 else None
        return cls(_uint(parts[0], "rtcp port", 65535), connection)


def _parse_ptime(value: str) -> float:
    if _REAL.fullmatch(value) is None or float(value) == 0:
        raise SdpError(f"invalid packet time {value!r}")
    return float(value)


def _parse_fmtp(value: str) -> tuple[str, str]:
    parts = value.split(maxsplit=1)
    if not parts:
        raise SdpError(f"malformed fmtp {value!r}")
    return parts[0], parts[1].strip() if len(parts) == 2 else ""


# Attributes whose values we interpret; parse() validates them so later reads cannot fail.
_VALIDATORS = {
    "rtpmap": RtpMap.parse,
    "fmtp": _parse_fmtp,
    "ptime": _parse_ptime,
    "maxptime": _parse_ptime,
    "rtcp": RtcpAttribute.parse,
}


class _Attributes:
    """Attribute lookups shared by the session and media levels."""

    attributes: tuple[Attribute, ...]

    def get_attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def attribute_values(self, name: str) -> list[str]:
        return [a.value for a in self.attributes if a.name == name and a.value is not None]

    @property
    def direction(self) -> Direction | None:
        """The direction stated at this level, if any."""
        return next((_DIRECTIONS[a.name] for a in self.attributes
                     if a.value is None and a.name in _DIRECTIONS), None)

    @property
    def ptime_ms(self) -> float | None:
        """a=ptime (RFC 8866 §6.4); a rational number of milliseconds."""
        return next(map(_parse_ptime, self.attribute_values("ptime")), None)

    @property
    def maxptime_ms(self) -> float | None:
        return next(map(_parse_ptime, self.attribute_values("maxptime")), None)


def _extra(lines: tuple[tuple[str, str], ...], early: bool) -> list[str]:
    return [f"{kind}={value}" for kind, value in lines if (kind in _EARLY_TYPES) == early]


@dataclass(frozen=True)
class MediaDescription(_Attributes):
    """One m= section: m=<media> <port>[/<count>] <proto> <fmt> ... and its lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    extra_lines: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse_media_line(cls, value: str) -> MediaDescription:
        parts = value.split()
        if len(parts) < 4:
            raise SdpError("malformed 'm=' line")
        port, slash, count = parts[1].partition("/")
        return cls(parts[0], _uint(port, "port", 65535), parts[2], tuple(parts[3:]),
                   _uint(count, "port count") if slash else None)

    def rtpmap(self, fmt: str) -> RtpMap | None:
        """The rtpmap of a format, falling back to the RFC 3551 static table."""
        for value in self.attribute_values("rtpmap"):
            if value.split(maxsplit=1)[:1] == [fmt]:
                return RtpMap.parse(value)
        if _UINT.fullmatch(fmt) is not None:
            return STATIC_PAYLOAD_TYPES.get(int(fmt))
        return None

    def fmtp(self, fmt: str) -> str | None:
        return next((params for f, params in map(_parse_fmtp, self.attribute_values("fmtp"))
                     if f == fmt), None)

    @property
    def rtcp_mux(self) -> bool:
        """RFC 5761 §5.1.1: a=rtcp-mux."""
        return self.get_attribute("rtcp-mux") is not None

    @property
    def rtcp(self) -> RtcpAttribute | None:
        values = self.attribute_values("rtcp")
        return RtcpAttribute.parse(values[0]) if values else None

    def lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        lines = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        lines += _extra(self.extra_lines, early=True)
        if self.connection is not None:
            lines.append(f"c={self.connection.serialize()}")
        lines += [f"b={b.serialize()}" for b in self.bandwidths]
        lines += _extra(self.extra_lines, early=False)
        lines += [a.serialize() for a in self.attributes]
        return lines


@dataclass(frozen=True)
class SessionDescription(_Attributes):
    """A whole session description (RFC 8866 §5)."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    times: tuple[Timing, ...] = (Timing(),)
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    extra_lines: tuple[tuple[str, str], ...] = ()
    version: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        if isinstance(data, str):
            try:
                data.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raise SdpError("SDP is not encodable as UTF-8") from None
            text = data
        else:
            # surrogateescape keeps stray non-UTF-8 bytes (old phones' session names)
            # so serialize() gives them back unchanged.
            text = data.decode("utf-8", "surrogateescape")
        parser = _Parser()
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if not line:
                continue
            if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
                raise SdpError(f"SDP line {number}: expected 'type=value'")
            try:
                parser.feed(line[0], line[2:])
            except SdpError as exc:
                raise SdpError(f"SDP line {number}: {exc}") from None
        return parser.finish()

    def serialize(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin.serialize()}", f"s={self.session_name}"]
        lines += _extra(self.extra_lines, early=True)
        if self.connection is not None:
            lines.append(f"c={self.connection.serialize()}")
        lines += [f"b={b.serialize()}" for b in self.bandwidths]
        for timing in self.times:
            lines.append(f"t={timing.start} {timing.stop}")
            lines += [f"r={repeat}" for repeat in timing.repeats]
        lines += _extra(self.extra_lines, early=False)
        lines += [a.serialize() for a in self.attributes]
        for media in self.media:
            lines += media.lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """Media-level c= overrides the session-level one (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def __repr__(self) -> str:
        streams = ", ".join(f"{m.media}:{m.port}" for m in self.media)
        return (f"<SessionDescription o={self.origin.session_id}/"
                f"{self.origin.session_version} [{streams}]>")


class _Section:
    """Mutable lines of one level while parsing."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.bandwidths: list[Bandwidth] = []
        self.attributes: list[Attribute] = []
        self.extra: list[tuple[str, str]] = []

    def extra_lines(self) -> tuple[tuple[str, str], ...]:
        # Grouped the way serialize() writes them, so a re-parse gives an equal model.
        early = [line for line in self.extra if line[0] in _EARLY_TYPES]
        return (*early, *(line for line in self.extra if line[0] not in _EARLY_TYPES))


class _Parser:
    def __init__(self) -> None:
        self.seen_version = False
        self.origin: Origin | None = None
        self.session_name: str | None = None
        self.times: list[Timing] = []
        self.session = _Section()
        self.media: list[tuple[MediaDescription, _Section]] = []

    def feed(self, kind: str, value: str) -> None:
        if not self.seen_version:
            if kind != "v":
                raise SdpError("expected 'v=' line first")
            if value != "0":
                raise SdpError(f"unsupported SDP version {value!r}")
            self.seen_version = True
            return
        if kind == "m":
            self.media.append((MediaDescription.parse_media_line(value), _Section()))
            return
        section = self.media[-1][1] if self.media else self.session
        if self.media and kind in _MEDIA_FORBIDDEN:
            raise SdpError(f"'{kind}=' line not allowed in a media description")
        if kind == "v":
            raise SdpError("duplicate 'v=' line")
        elif kind == "o":
            if self.origin is not None:
                raise SdpError("duplicate 'o=' line")
            self.origin = Origin.parse(value)
        elif kind == "s":
            if self.session_name is not None:
                raise SdpError("duplicate 's=' line")
            self.session_name = value
        elif kind == "c":
            if section.connection is not None:
                raise SdpError("duplicate 'c=' line")
            section.connection = Connection.parse(value)
        elif kind == "b":
            section.bandwidths.append(Bandwidth.parse(value))
        elif kind == "t":
            self.times.append(Timing.parse(value))
        elif kind == "r":
            if not self.times:
                raise SdpError("'r=' line without a 't=' line")
            last = self.times[-1]
            self.times[-1] = Timing(last.start, last.stop, (*last.repeats, value))
        elif kind == "a":
            section.attributes.append(_parse_attribute(value))
        else:
            section.extra.append((kind, value))

    def finish(self) -> SessionDescription:
        if not self.seen_version:
            raise SdpError("SDP is empty")
        if self.origin is None:
            raise SdpError("SDP has no 'o=' line")
        if self.session_name is None:
            raise SdpError("SDP has no 's=' line")
        session = self.session
        return SessionDescription(
            origin=self.origin,
            session_name=self.session_name,
            connection=session.connection,
            times=tuple(self.times),
            bandwidths=tuple(session.bandwidths),
            attributes=tuple(session.attributes),
            media=tuple(
                MediaDescription(
                    m.media, m.port, m.proto, m.formats, m.port_count, s.connection,
                    tuple(s.bandwidths), tuple(s.attributes), s.extra_lines(),
                )
                for m, s in self.media
            ),
            extra_lines=session.extra_lines(),
        )


def _parse_attribute(value: str) -> Attribute:
    name, sep, attr_value = value.partition(":")
    if not name:
        raise SdpError("empty attribute name")
    attribute = Attribute(name, attr_value if sep else None)
    validate = _VALIDATORS.get(name)
    if validate is not None and attribute.value is not None:
        validate(attribute.value)
    return attribute
