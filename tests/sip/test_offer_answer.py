"""RFC 3264 offer/answer against real phones' offers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.sip.errors import LocalProtocolError
from switch.sip.offer_answer import (
    CODECS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    NegotiatedMedia,
    Negotiation,
    NoAcceptableMedia,
    build_offer,
    negotiate_answer,
    process_answer,
)
from switch.sip.sdp import Direction, SdpError, SessionDescription

FIXTURES = Path(__file__).parent / "fixtures" / "sdp"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.sdp"))
LOCAL: dict[str, Any] = {"local_address": "127.0.0.1", "local_port": 20000,
                         "session_id": 42, "session_version": 1}


def negotiate(offer: SessionDescription, **overrides: Any) -> Negotiation:
    return negotiate_answer(offer, **{**LOCAL, **overrides})


def offer_from(name: str) -> SessionDescription:
    return SessionDescription.parse((FIXTURES / name).read_bytes())


def answer(name: str, **overrides: Any) -> tuple[NegotiatedMedia, bytes]:
    media, description = negotiate(offer_from(name), **overrides)
    return media, description.serialize()


def sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


ANSWER_HEAD = ("v=0", "o=- 42 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0")


def test_codec_table() -> None:
    assert CODECS == {"pcmu": PCMU, "pcma": PCMA, "telephone-event": TELEPHONE_EVENT}
    assert (PCMU.payload_type, PCMA.payload_type) == (0, 8)
    assert (TELEPHONE_EVENT.payload_type, TELEPHONE_EVENT.fmtp) == (101, "0-16")


def test_yealink_offer_is_answered_with_its_first_supported_codec() -> None:
    media, data = answer("yealink_t46.sdp")
    assert media == NegotiatedMedia(
        remote_address="10.0.0.21", remote_port=11780, remote_rtcp_port=11781, rtcp_mux=False,
        payload_type=8, codec_name="PCMA", clock_rate=8000, dtmf_payload_type=101,
        ptime_ms=20, direction=Direction.SENDRECV, on_hold=False,
    )
    assert data == sdp(*ANSWER_HEAD, "m=audio 20000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
                       "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20",
                       "a=sendrecv")


def test_offerer_preference_wins_over_ours() -> None:
    # Polycom lists G.722 first; we take its next choice, PCMU, though we list PCMA too.
    media, data = answer("polycom_vvx.sdp", supported=(PCMA, PCMU, TELEPHONE_EVENT))
    assert (media.codec_name, media.payload_type, media.dtmf_payload_type) == ("PCMU", 0, 127)
    assert data == sdp(*ANSWER_HEAD, "m=audio 20000 RTP/AVP 0 127", "a=rtpmap:0 PCMU/8000",
                       "a=rtpmap:127 telephone-event/8000", "a=fmtp:127 0-15", "a=sendrecv")


def test_supported_list_restricts_codecs_and_dtmf() -> None:
    media, data = answer("polycom_vvx.sdp", supported=(PCMA,))
    assert (media.codec_name, media.dtmf_payload_type) == ("PCMA", None)
    assert b"m=audio 20000 RTP/AVP 8\r\n" in data
    assert b"telephone-event" not in data


def test_static_payload_types_without_rtpmap_and_ptime_echo() -> None:
    media, data = answer("cisco_spa_static_pt.sdp", ptime_ms=20)
    assert (media.codec_name, media.payload_type, media.ptime_ms) == ("PCMU", 0, 30)
    assert b"a=ptime:30\r\n" in data


def test_ptime_is_not_added_when_not_offered_and_maxptime_caps_ours() -> None:
    media, data = answer("polycom_vvx.sdp", ptime_ms=30)
    assert media.ptime_ms == 30 and b"ptime" not in data
    offer = SessionDescription.parse(sdp(
        "v=0", "o=- 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "t=0 0",
        "m=audio 4000 RTP/AVP 0", "a=maxptime:10"))
    assert negotiate(offer, ptime_ms=20).media.ptime_ms == 10


def test_lowercase_encoding_names_are_matched_and_answered_canonically() -> None:
    media, data = answer("snom_hold_inactive.sdp")
    assert media.codec_name == "PCMU"
    assert b"a=rtpmap:0 PCMU/8000\r\n" in data


@pytest.mark.parametrize(
    ("name", "answered", "direction"),
    [
        ("yealink_hold_sendonly.sdp", b"a=recvonly", Direction.RECVONLY),
        ("snom_hold_inactive.sdp", b"a=inactive", Direction.INACTIVE),
        # RFC 2543 hold: we must not send to 0.0.0.0, but still listen
        ("cisco_7960_hold_c0.sdp", b"a=recvonly", Direction.RECVONLY),
    ],
)
def test_hold_is_detected_and_direction_answered(
    name: str, answered: bytes, direction: Direction
) -> None:
    media, data = answer(name)
    assert media.on_hold
    assert media.direction is direction
    assert data.endswith(answered + b"\r\n")


def test_recvonly_offer_is_answered_sendonly_and_is_not_hold() -> None:
    media, data = answer("rfc8866_all_lines.sdp")  # session-level a=recvonly
    assert (media.direction, media.on_hold) == (Direction.SENDONLY, False)
    assert b"a=sendonly\r\n" in data


def test_our_own_hold_direction_is_intersected_with_the_offer() -> None:
    media, data = answer("yealink_t46.sdp", direction=Direction.SENDONLY)
    assert (media.direction, media.on_hold) == (Direction.SENDONLY, False)
    assert data.endswith(b"a=sendonly\r\n")
    media, _ = answer("yealink_hold_sendonly.sdp", direction=Direction.SENDONLY)
    assert media.direction is Direction.INACTIVE


def test_c0_hold_dtmf_events_are_intersected() -> None:
    media, data = answer("cisco_7960_hold_c0.sdp")
    assert media.remote_address == "0.0.0.0"
    assert b"a=fmtp:101 0-11\r\n" in data


def test_video_is_declined_with_port_zero_and_order_kept() -> None:
    media, data = answer("grandstream_gxv_video.sdp")
    assert (media.remote_address, media.remote_port, media.codec_name) == (
        "192.168.1.100", 5004, "PCMU")
    assert data.endswith(b"a=sendrecv\r\nm=video 0 RTP/AVP 99\r\n")


def test_second_audio_stream_and_video_are_declined() -> None:
    _, data = answer("rfc8866_all_lines.sdp")
    assert data == sdp(*ANSWER_HEAD, "m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
                       "a=sendonly", "m=audio 0 RTP/AVP 0", "m=video 0 RTP/AVP 99")


def test_srtp_stream_declined_and_plain_rtp_alternative_accepted() -> None:
    media, data = answer("zoiper_srtp_best_effort.sdp")
    described = SessionDescription.parse(data)
    assert [(m.port, m.proto) for m in described.media] == [(0, "RTP/SAVP"),
                                                             (20000, "RTP/AVP")]
    # the 8 kHz telephone-event, not the 48 kHz one that matches opus
    assert (media.codec_name, media.dtmf_payload_type) == ("PCMU", 101)


def test_dtmf_payload_type_follows_the_offer_and_clock_rate() -> None:
    media, data = answer("baresip_rtcp_mux.sdp")
    assert media.dtmf_payload_type == 102
    assert b"a=rtpmap:102 telephone-event/8000\r\na=fmtp:102 0-15\r\n" in data


def test_rtcp_mux_is_accepted_when_offered() -> None:
    media, data = answer("baresip_rtcp_mux.sdp")
    assert (media.rtcp_mux, media.remote_rtcp_port) == (True, 10112)
    assert b"a=rtcp-mux\r\n" in data


def test_rtcp_port_from_attribute_or_rtp_port_plus_one() -> None:
    assert answer("asterisk_rtcp_attr.sdp")[0].remote_rtcp_port == 14601
    assert answer("yealink_t46.sdp")[0].remote_rtcp_port == 11781


def test_media_level_connection_is_used() -> None:
    media, data = answer("cisco_cube_gateway.sdp")
    assert media.remote_address == "10.1.1.2"
    assert b"CN" not in data  # only what we chose is answered


@pytest.mark.parametrize("name", ["srtp_only.sdp", "g729_only.sdp"])
def test_no_acceptable_codec_is_488(name: str) -> None:
    with pytest.raises(NoAcceptableMedia) as info:
        answer(name)
    assert str(info.value) == "no acceptable audio stream in the offer"
    assert info.value.status == 488
    assert isinstance(info.value, SdpError)


def offer_text(*media_lines: str, connection: str = "c=IN IP4 192.0.2.9") -> bytes:
    head = ["v=0", "o=- 1 1 IN IP4 192.0.2.9", "s=-"]
    return sdp(*head, *([connection] if connection else []), "t=0 0", *media_lines)


def test_stream_disabled_by_offerer_stays_declined() -> None:
    offer = SessionDescription.parse(offer_text("m=audio 0 RTP/AVP 0", "m=audio 4002 RTP/AVP 8"))
    media, description = negotiate(offer)
    assert [m.port for m in description.media] == [0, 20000]
    assert media.remote_port == 4002


def test_missing_connection_address_is_400() -> None:
    offer = SessionDescription.parse(offer_text("m=audio 4000 RTP/AVP 0", connection=""))
    with pytest.raises(SdpError, match=r"^SDP media line 1 has no connection address$") as info:
        negotiate(offer)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("dtmf_lines", "expected"),
    [
        ((), "0-15"),  # RFC 4733: no fmtp means 0-15
        (("a=fmtp:101 0-15,66,70",), "0-15"),
        (("a=fmtp:101 0-11,16",), "0-11,16"),
        (("a=fmtp:101 32-40",), None),  # nothing in common: no DTMF answered
    ],
)
def test_telephone_event_fmtp_intersection(dtmf_lines: tuple[str, ...], expected: str | None
                                          ) -> None:
    offer = SessionDescription.parse(offer_text(
        "m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", *dtmf_lines))
    media, description = negotiate(offer)
    assert description.media[0].fmtp("101") == expected
    assert media.dtmf_payload_type == (None if expected is None else 101)


def test_answer_session_fields_come_from_the_caller() -> None:
    _, description = negotiate_answer(
        offer_from("yealink_t46.sdp"), local_address="2001:db8::5", local_port=30000,
        session_id=99, session_version=3, username="switch", session_name="call")
    assert description.serialize().startswith(
        sdp("v=0", "o=switch 99 3 IN IP6 2001:db8::5", "s=call", "c=IN IP6 2001:db8::5"))


# -- UAC side ----------------------------------------------------------------------------

def test_build_offer_exact_bytes() -> None:
    offer = build_offer("192.0.2.1", 30000, session_id=7, session_version=8)
    assert offer.serialize() == sdp(
        "v=0", "o=- 7 8 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 30000 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv")


def test_build_offer_options() -> None:
    offer = build_offer("192.0.2.1", 30000, session_id=7, session_version=9,
                        codecs=(PCMA, Codec("telephone-event", 8000, 96, "0-15")),
                        direction=Direction.SENDONLY, ptime_ms=None, rtcp_mux=True)
    assert offer.serialize().endswith(sdp(
        "m=audio 30000 RTP/AVP 8 96", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=rtcp-mux", "a=sendonly"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codecs": (PCMU, Codec("X", 8000, 0))}, r"codecs need distinct payload types"),
        ({"codecs": ()}, r"codecs need distinct payload types"),
    ],
)
def test_build_offer_refuses_our_own_mistakes(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        build_offer("192.0.2.1", 30000, session_id=1, session_version=1, **kwargs)
    with pytest.raises(LocalProtocolError, match=r"^invalid local port 0$"):
        build_offer("192.0.2.1", 0, session_id=1, session_version=1)


OUR_OFFER = build_offer("192.0.2.1", 30000, session_id=7, session_version=8, rtcp_mux=True)


def peer_answer(*media: str, connection: str = "c=IN IP4 198.51.100.7") -> SessionDescription:
    return SessionDescription.parse(sdp(
        "v=0", "o=- 5 5 IN IP4 198.51.100.7", "s=-", connection, "t=0 0", *media))


def test_process_answer() -> None:
    media = process_answer(OUR_OFFER, peer_answer(
        "m=audio 40000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:30", "a=sendrecv"))
    assert media == NegotiatedMedia(
        remote_address="198.51.100.7", remote_port=40000, remote_rtcp_port=40001,
        rtcp_mux=False, payload_type=8, codec_name="PCMA", clock_rate=8000,
        dtmf_payload_type=101, ptime_ms=30, direction=Direction.SENDRECV, on_hold=False)


def test_process_answer_rtcp_mux_static_pt_and_offered_ptime() -> None:
    media = process_answer(OUR_OFFER, peer_answer("m=audio 40000 RTP/AVP 0", "a=rtcp-mux"))
    assert (media.rtcp_mux, media.remote_rtcp_port) == (True, 40000)
    assert (media.codec_name, media.dtmf_payload_type, media.ptime_ms) == ("PCMU", None, 20)


@pytest.mark.parametrize(
    ("offered", "answered", "connection", "direction", "on_hold"),
    [
        (Direction.SENDRECV, "a=sendonly", "c=IN IP4 198.51.100.7", Direction.RECVONLY, True),
        (Direction.SENDRECV, "a=inactive", "c=IN IP4 198.51.100.7", Direction.INACTIVE, True),
        (Direction.SENDRECV, "a=sendrecv", "c=IN IP4 0.0.0.0", Direction.RECVONLY, True),
        (Direction.SENDONLY, "a=recvonly", "c=IN IP4 198.51.100.7", Direction.SENDONLY, False),
        (Direction.INACTIVE, "a=inactive", "c=IN IP4 198.51.100.7", Direction.INACTIVE, False),
    ],
)
def test_process_answer_direction_and_hold(
    offered: Direction, answered: str, connection: str, direction: Direction, on_hold: bool
) -> None:
    offer = build_offer("192.0.2.1", 30000, session_id=7, session_version=8, direction=offered)
    media = process_answer(offer, peer_answer("m=audio 40000 RTP/AVP 0", answered,
                                              connection=connection))
    assert (media.direction, media.on_hold) == (direction, on_hold)


@pytest.mark.parametrize(
    ("media_lines", "error", "message", "status"),
    [
        (("m=audio 40000 RTP/AVP 0", "m=video 0 RTP/AVP 99"), SdpError,
         "answer has 2 media lines, offer had 1", 400),
        ((), SdpError, "answer has 0 media lines, offer had 1", 400),
        (("m=video 40000 RTP/AVP 99",), SdpError,
         "answer media line 1 is 'video', offer had 'audio'", 400),
        (("m=audio 40000 RTP/AVP 18",), SdpError, "answer media line 1 has no format we offered",
         400),
        (("m=audio 40000 RTP/AVP 101",), SdpError,
         "answer media line 1 has no format we offered", 400),
        (("m=audio 0 RTP/AVP 0",), NoAcceptableMedia, "the answer declined every audio stream",
         488),
    ],
)
def test_process_answer_errors(
    media_lines: tuple[str, ...], error: type[SdpError], message: str, status: int
) -> None:
    with pytest.raises(error) as info:
        process_answer(OUR_OFFER, peer_answer(*media_lines))
    assert (str(info.value), info.value.status) == (message, status)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_both_ends_agree(name: str) -> None:
    """The offerer's view of our answer mirrors ours: same codec, DTMF type and ptime."""
    offer = offer_from(name)
    try:
        ours, answer_description = negotiate(offer)
    except NoAcceptableMedia:
        return
    answer_description = SessionDescription.parse(answer_description.serialize())
    assert len(answer_description.media) == len(offer.media)
    assert [m.media for m in answer_description.media] == [m.media for m in offer.media]
    assert sum(m.port != 0 for m in answer_description.media) == 1
    theirs = process_answer(offer, answer_description)
    assert (theirs.remote_address, theirs.remote_port) == ("127.0.0.1", 20000)
    assert (theirs.payload_type, theirs.codec_name, theirs.dtmf_payload_type) == (
        ours.payload_type, ours.codec_name, ours.dtmf_payload_type)
    assert theirs.ptime_ms == ours.ptime_ms
    assert theirs.rtcp_mux == ours.rtcp_mux
    assert theirs.direction is ours.direction.reversed()


def test_full_exchange_between_two_switches() -> None:
    offer = SessionDescription.parse(build_offer(
        "192.0.2.1", 30000, session_id=7, session_version=8, rtcp_mux=True).serialize())
    callee, answer_description = negotiate_answer(
        offer, local_address="192.0.2.2", local_port=40000, session_id=9, session_version=9,
        supported=(PCMA, TELEPHONE_EVENT))
    caller = process_answer(offer, SessionDescription.parse(answer_description.serialize()))
    assert (caller.remote_address, caller.remote_port, caller.codec_name) == (
        "192.0.2.2", 40000, "PCMA")
    assert (callee.remote_address, callee.remote_port, callee.codec_name) == (
        "192.0.2.1", 30000, "PCMA")
    assert caller.rtcp_mux and callee.rtcp_mux
    assert caller.dtmf_payload_type == callee.dtmf_payload_type == 101


# -- Hypothesis: negotiation over damaged offers raises only SdpError ----------------------

@st.composite
def damaged_offer(draw: st.DrawFn) -> bytes:
    data = bytearray((FIXTURES / draw(st.sampled_from(FIXTURE_NAMES))).read_bytes())
    for _ in range(draw(st.integers(1, 5))):
        position = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            del data[position:position + draw(st.integers(1, 10))]
        else:
            data[position:position] = draw(st.sampled_from(
                [b" ", b"0", b"/", b":", b"-", b",", b"\r\n", b"a=sendonly\r\n",
                 b"a=rtcp-mux\r\n", b"c=IN IP4 0.0.0.0\r\n", b"m=audio 0 RTP/AVP 0\r\n"]))
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_offer())
def test_negotiation_of_damaged_offers_raises_only_sdp_error(data: bytes) -> None:
    try:
        offer = SessionDescription.parse(data)
        media, description = negotiate(offer)
    except SdpError:
        return
    assert len(description.media) == len(offer.media)
    assert sum(m.port != 0 for m in description.media) == 1
    assert media.codec_name in ("PCMU", "PCMA")
    assert process_answer(offer, description).payload_type == media.payload_type
