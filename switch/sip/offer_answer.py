"""SDP offer/answer (RFC 3264) for one G.711 audio stream with RFC 4733 DTMF.

Pure functions over `SessionDescription`: no I/O, no clock, no randomness (the caller
passes session id and version). The result of every exchange is a `NegotiatedMedia`,
everything the media engine needs to open or update one RTP leg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from switch.sip.errors import LocalProtocolError
from switch.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)

__all__ = [
    "CODECS", "DEFAULT_CODECS", "PCMA", "PCMU", "TELEPHONE_EVENT",
    "Codec", "NegotiatedMedia", "Negotiation", "NoAcceptableMedia",
    "build_offer", "negotiate_answer", "process_answer",
]

AUDIO_PROTO = "RTP/AVP"  # RFC 3551; RTP/SAVP and friends are declined
DEFAULT_PTIME_MS = 20  # RFC 3551 §4.5: default packetization of G.711
DTMF_EVENTS_WITHOUT_FMTP = "0-15"  # RFC 4733 §2.4.1: no fmtp means DTMF digits 0-15


class NoAcceptableMedia(SdpError):
    """No stream of the offer can be accepted: answer 488 Not Acceptable Here."""

    def __init__(self, message: str, status: int = 488) -> None:
        super().__init__(message, status)


@dataclass(frozen=True)
class Codec:
    """A payload format we can offer or accept."""

    name: str
    clock_rate: int
    payload_type: int  # the static type (RFC 3551), or the dynamic one we offer
    fmtp: str | None = None

    @property
    def is_dtmf(self) -> bool:
        return self.name.lower() == "telephone-event"

    def matches(self, rtpmap: RtpMap) -> bool:
        # Encoding names are case-insensitive (RFC 4855 §3); G.711 is mono.
        return (rtpmap.encoding_name.lower() == self.name.lower()
                and rtpmap.clock_rate == self.clock_rate and rtpmap.channels in (None, 1))


PCMU = Codec("PCMU", 8000, 0)  # RFC 3551 §6 table 4
PCMA = Codec("PCMA", 8000, 8)  # RFC 3551 §6 table 4
# RFC 4733 §3.2: events 0-15 are DTMF digits, 16 is hook flash.
TELEPHONE_EVENT = Codec("telephone-event", 8000, 101, "0-16")
DEFAULT_CODECS = (PCMU, PCMA, TELEPHONE_EVENT)  # our preference order
CODECS = {codec.name.lower(): codec for codec in DEFAULT_CODECS}


@dataclass(frozen=True)
class NegotiatedMedia:
    """The agreed audio stream, from our side: `direction` is what *we* may do."""

    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    rtcp_mux: bool
    payload_type: int
    codec_name: str
    clock_rate: int
    dtmf_payload_type: int | None
    ptime_ms: int
    direction: Direction
    on_hold: bool  # the peer put us on hold: it will not receive what we send


class Negotiation(NamedTuple):
    media: NegotiatedMedia
    answer: SessionDescription


class _Choice(NamedTuple):
    codec_fmt: str
    codec: Codec  # ours: its name is the canonical spelling ("PCMU", not "pcmu")
    rtpmap: RtpMap
    dtmf_fmt: str | None
    dtmf_events: str | None


def _event_numbers(fmtp: str) -> set[int]:
    """RFC 4733 §2.4.1 event list, e.g. "0-15,66" -> {0..15, 66}; junk is ignored."""
    numbers: set[int] = set()
    for item in fmtp.replace(" ", "").split(","):
        bounds = item.split("-")
        if len(bounds) <= 2 and all(b.isascii() and b.isdigit() and len(b) <= 3 for b in bounds):
            numbers.update(range(int(bounds[0]), min(int(bounds[-1]), 255) + 1))
    return numbers


def _event_list(numbers: set[int]) -> str:
    ranges: list[str] = []
    for number in sorted(numbers):
        if ranges and number - 1 in numbers:
            ranges[-1] = f"{ranges[-1].partition('-')[0]}-{number}"
        else:
            ranges.append(str(number))
    return ",".join(ranges)


def _choose(media: MediaDescription, supported: Sequence[Codec]) -> _Choice | None:
    """The offerer's first format we support (RFC 3264 §6.1), plus its DTMF format."""
    if media.media != "audio" or media.port == 0 or media.proto != AUDIO_PROTO:
        return None
    mapped = [(fmt, rtpmap) for fmt in media.formats
              if (rtpmap := media.rtpmap(fmt)) is not None]
    voice = [c for c in supported if not c.is_dtmf]
    choice = next(((fmt, c, r) for fmt, r in mapped for c in voice if c.matches(r)), None)
    if choice is None:
        return None
    fmt, codec, rtpmap = choice
    for dtmf in (c for c in supported if c.is_dtmf and c.clock_rate == rtpmap.clock_rate):
        for dtmf_fmt, dtmf_map in mapped:
            if not dtmf.matches(dtmf_map):
                continue
            offered = _event_numbers(media.fmtp(dtmf_fmt) or DTMF_EVENTS_WITHOUT_FMTP)
            events = offered & _event_numbers(dtmf.fmtp or DTMF_EVENTS_WITHOUT_FMTP)
            if events:
                return _Choice(fmt, codec, rtpmap, dtmf_fmt, _event_list(events))
    return _Choice(fmt, codec, rtpmap, None, None)


def _remote(session: SessionDescription, media: MediaDescription, index: int) -> Connection:
    connection = session.connection_for(media)
    if connection is None:
        raise SdpError(f"SDP media line {index + 1} has no connection address")
    return connection


def _rtcp_port(media: MediaDescription, rtcp_mux: bool) -> int:
    if rtcp_mux:
        return media.port  # RFC 5761 §5.1.1
    rtcp = media.rtcp
    return rtcp.port if rtcp is not None else media.port + 1  # RFC 3605, RFC 3550 §11


def _ptime(*media: MediaDescription, default_ms: int) -> int:
    offered = next((m.ptime_ms for m in media if m.ptime_ms is not None), None)
    ptime_ms = max(1, round(offered)) if offered is not None else default_ms
    maxptime = next((m.maxptime_ms for m in media if m.maxptime_ms is not None), None)
    return min(ptime_ms, max(1, int(maxptime))) if maxptime is not None else ptime_ms


def _session(address: str, session_id: int, session_version: int, username: str,
             session_name: str, media: Sequence[MediaDescription]) -> SessionDescription:
    connection = Connection.for_address(address)
    origin = Origin(username, session_id, session_version, address, connection.address_type)
    return SessionDescription(origin, session_name, connection, (Timing(),), media=tuple(media))


def _check_local(address: str, port: int) -> None:
    if not address or any(c.isspace() for c in address):
        raise LocalProtocolError(f"invalid local address {address!r}")
    if not 0 < port <= 65535:
        raise LocalProtocolError(f"invalid local port {port}")


def negotiate_answer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    supported: Sequence[Codec] = DEFAULT_CODECS,
    ptime_ms: int = DEFAULT_PTIME_MS,
    direction: Direction = Direction.SENDRECV,
    username: str = "-",
    session_name: str = "-",
) -> Negotiation:
    """Answer an offer (RFC 3264 §6): accept the first usable audio stream, decline the rest.

    The answer has the offer's m-lines in the same order; declined ones get port 0.
    `direction` is what we want (e.g. sendonly while we hold the caller); the answered
    direction is the intersection of it with the reverse of the offered one.
    Raises NoAcceptableMedia (488) when no stream is usable.
    """
    _check_local(local_address, local_port)
    accepted: NegotiatedMedia | None = None
    answer_media: list[MediaDescription] = []
    for index, media in enumerate(offer.media):
        choice = None if accepted is not None else _choose(media, supported)
        if choice is None:
            # RFC 3264 §6: a declined stream keeps its media type, proto and formats.
            answer_media.append(MediaDescription(media.media, 0, media.proto, media.formats))
            continue
        remote = _remote(offer, media, index)
        offered = offer.direction_for(media)
        remote_receives = offered.receives and not remote.is_hold
        ours = Direction.from_flags(sends=direction.sends and remote_receives,
                                    receives=direction.receives and offered.sends)
        rtcp_mux = media.rtcp_mux  # RFC 5761 §5.1.1: accept multiplexing whenever offered
        accepted = NegotiatedMedia(
            remote.address, media.port, _rtcp_port(media, rtcp_mux), rtcp_mux,
            choice.rtpmap.payload_type, choice.codec.name, choice.codec.clock_rate,
            int(choice.dtmf_fmt) if choice.dtmf_fmt is not None else None,
            _ptime(media, default_ms=ptime_ms), ours, on_hold=not remote_receives,
        )
        answer_media.append(_answer_stream(media, choice, local_port, ours))
    if accepted is None:
        raise NoAcceptableMedia("no acceptable audio stream in the offer")
    answer = _session(local_address, session_id, session_version, username, session_name,
                      answer_media)
    return Negotiation(accepted, answer)


def _answer_stream(offered: MediaDescription, choice: _Choice, local_port: int,
                   direction: Direction) -> MediaDescription:
    codec = choice.codec
    formats = [choice.codec_fmt]
    attributes = [Attribute("rtpmap", f"{choice.codec_fmt} {codec.name}/{codec.clock_rate}")]
    if choice.dtmf_fmt is not None:
        formats.append(choice.dtmf_fmt)
        attributes += [Attribute("rtpmap", f"{choice.dtmf_fmt} telephone-event/"
                                           f"{codec.clock_rate}"),
                       Attribute("fmtp", f"{choice.dtmf_fmt} {choice.dtmf_events}")]
    ptime = offered.get_attribute("ptime")
    if ptime is not None:
        attributes.append(ptime)  # echoed as offered
    if offered.rtcp_mux:
        attributes.append(Attribute("rtcp-mux"))
    attributes.append(Attribute(direction.value))
    return MediaDescription("audio", local_port, AUDIO_PROTO, tuple(formats),
                            attributes=tuple(attributes))


def build_offer(
    local_address: str,
    local_port: int,
    *,
    session_id: int,
    session_version: int,
    codecs: Sequence[Codec] = DEFAULT_CODECS,
    direction: Direction = Direction.SENDRECV,
    ptime_ms: int | None = DEFAULT_PTIME_MS,
    rtcp_mux: bool = False,
    username: str = "-",
    session_name: str = "-",
) -> SessionDescription:
    """An offer (RFC 3264 §5) of one audio stream, codecs in our order of preference."""
    _check_local(local_address, local_port)
    payload_types = [codec.payload_type for codec in codecs]
    if not codecs or len(set(payload_types)) != len(payload_types):
        raise LocalProtocolError(f"codecs need distinct payload types, got {payload_types}")
    attributes = []
    for codec in codecs:
        attributes.append(Attribute("rtpmap", f"{codec.payload_type} {codec.name}/"
                                              f"{codec.clock_rate}"))
        if codec.fmtp is not None:
            attributes.append(Attribute("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    if ptime_ms is not None:
        attributes.append(Attribute("ptime", str(ptime_ms)))
    if rtcp_mux:
        attributes.append(Attribute("rtcp-mux"))
    attributes.append(Attribute(direction.value))
    media = MediaDescription("audio", local_port, AUDIO_PROTO,
                             tuple(str(pt) for pt in payload_types),
                             attributes=tuple(attributes))
    return _session(local_address, session_id, session_version, username, session_name,
                    [media])


def process_answer(offer: SessionDescription, answer: SessionDescription, *,
                   ptime_ms: int = DEFAULT_PTIME_MS) -> NegotiatedMedia:
    """Check the peer's answer against our offer (RFC 3264 §7) and say what was agreed."""
    if len(answer.media) != len(offer.media):
        raise SdpError(f"answer has {len(answer.media)} media lines, "
                       f"offer had {len(offer.media)}")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if theirs.media != ours.media:
            raise SdpError(f"answer media line {index + 1} is {theirs.media!r}, "
                           f"offer had {ours.media!r}")
        if theirs.port == 0 or ours.port == 0 or ours.media != "audio":
            continue
        offered_maps = {fmt: m for fmt in ours.formats if (m := ours.rtpmap(fmt)) is not None}
        picked = [(fmt, offered_maps[fmt]) for fmt in theirs.formats if fmt in offered_maps]
        rtpmap = next((m for _, m in picked if m.encoding_name.lower() != "telephone-event"),
                      None)
        if rtpmap is None:
            raise SdpError(f"answer media line {index + 1} has no format we offered")
        dtmf = next((int(f) for f, m in picked
                     if TELEPHONE_EVENT.matches(m) and m.clock_rate == rtpmap.clock_rate), None)
        remote = _remote(answer, theirs, index)
        offered, answered = offer.direction_for(ours), answer.direction_for(theirs)
        remote_receives = answered.receives and not remote.is_hold
        rtcp_mux = ours.rtcp_mux and theirs.rtcp_mux
        known = CODECS.get(rtpmap.encoding_name.lower())
        return NegotiatedMedia(
            remote.address, theirs.port, _rtcp_port(theirs, rtcp_mux), rtcp_mux,
            rtpmap.payload_type, known.name if known else rtpmap.encoding_name,
            rtpmap.clock_rate, dtmf,
            _ptime(theirs, ours, default_ms=ptime_ms),
            Direction.from_flags(sends=offered.sends and remote_receives,
                                 receives=offered.receives and answered.sends),
            on_hold=offered.sends and not remote_receives,
        )
    raise NoAcceptableMedia("the answer declined every audio stream")
