"""SDP parse/serialize (RFC 8866) against real phones' descriptions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.sip.errors import RemoteProtocolError, SipError
from switch.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAttribute,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sdp"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.sdp"))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> SessionDescription:
    return SessionDescription.parse(fixture(name))


def test_fixtures_are_present_and_crlf() -> None:
    assert len(FIXTURE_NAMES) >= 10
    for name in FIXTURE_NAMES:
        data = fixture(name)
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b""), name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_round_trips_byte_for_byte(name: str) -> None:
    assert parse(name).serialize() == fixture(name)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_lf_only_line_endings_parse_the_same(name: str) -> None:
    lf_only = fixture(name).replace(b"\r\n", b"\n")
    description = SessionDescription.parse(lf_only)
    assert description == parse(name)
    assert description.serialize() == fixture(name)  # written back with CRLF


def test_str_input_and_missing_final_newline() -> None:
    text = fixture("yealink_t46.sdp").decode().rstrip("\r\n")
    assert SessionDescription.parse(text) == parse("yealink_t46.sdp")


def test_session_level_model() -> None:
    sd = parse("baresip_rtcp_mux.sdp")
    assert sd.origin == Origin("-", 1915461563, 1248640219, "192.168.1.7")
    assert sd.session_name == "-"
    assert sd.connection == Connection("192.168.1.7", "IP4", "IN")
    assert sd.times == (Timing(0, 0),)
    assert sd.attributes == (("tool", "baresip 3.10.1"),)
    assert [m.media for m in sd.media] == ["audio"]


def test_media_level_model() -> None:
    audio = parse("baresip_rtcp_mux.sdp").media[0]
    assert (audio.media, audio.port, audio.port_count, audio.proto) == (
        "audio", 10112, None, "RTP/AVP")
    assert audio.formats == ("96", "0", "8", "101", "102")
    assert audio.bandwidths == (Bandwidth("AS", 96),)
    assert audio.rtpmap("96") == RtpMap(96, "opus", 48000, 2)
    assert audio.rtpmap("102") == RtpMap(102, "telephone-event", 8000)
    assert audio.fmtp("102") == "0-15"
    assert audio.fmtp("101") is None
    assert audio.ptime_ms == 20
    assert audio.rtcp_mux
    assert audio.rtcp == RtcpAttribute(10112)
    assert audio.direction is Direction.SENDRECV
    # attributes stay an ordered list of (name, value | None), unknown ones included
    assert audio.attributes[-4:] == (
        ("label", "1"),
        ("ssrc", "2987125468 cname:4b5e9c3a-0c1d-4a8f-9d0b-6a1e0f2b7c11"),
        ("rtcp-rsize", None),
        ("ptime", "20"),
    )


def test_media_level_connection_overrides_session_level() -> None:
    sd = parse("cisco_cube_gateway.sdp")
    assert sd.connection == Connection("10.1.1.1")
    assert sd.connection_for(sd.media[0]) == Connection("10.1.1.2")


def test_static_payload_types_without_rtpmap() -> None:
    audio = parse("cisco_spa_static_pt.sdp").media[0]
    assert audio.get_attribute("rtpmap") == Attribute("rtpmap", "2 G726-32/8000")
    assert audio.rtpmap("0") == RtpMap(0, "PCMU", 8000, 1)
    assert audio.rtpmap("8") == RtpMap(8, "PCMA", 8000, 1)
    assert audio.rtpmap("96") is None
    assert audio.ptime_ms == 30


def test_rtcp_attribute_with_address_and_maxptime() -> None:
    audio = parse("asterisk_rtcp_attr.sdp").media[0]
    assert audio.rtcp == RtcpAttribute(14601, Connection("203.0.113.6"))
    assert not audio.rtcp_mux
    assert audio.maxptime_ms == 150


def test_direction_defaults_to_session_level_then_sendrecv() -> None:
    polycom = parse("polycom_vvx.sdp")
    assert polycom.media[0].direction is None
    assert polycom.direction is Direction.SENDRECV
    assert polycom.direction_for(polycom.media[0]) is Direction.SENDRECV
    rfc = parse("rfc8866_all_lines.sdp")
    assert [rfc.direction_for(m) for m in rfc.media] == [Direction.RECVONLY] * 3
    cube = parse("cisco_cube_gateway.sdp")
    assert cube.direction is None
    assert cube.direction_for(cube.media[0]) is Direction.SENDRECV
    assert parse("yealink_hold_sendonly.sdp").media[0].direction is Direction.SENDONLY
    assert parse("snom_hold_inactive.sdp").media[0].direction is Direction.INACTIVE


def test_hold_address() -> None:
    assert parse("cisco_7960_hold_c0.sdp").connection == Connection("0.0.0.0")
    assert Connection("0.0.0.0").is_hold
    assert not Connection("10.0.0.1").is_hold


def test_lines_we_do_not_interpret_are_kept() -> None:
    sd = parse("rfc8866_all_lines.sdp")
    assert sd.extra_lines == (
        ("i", "SDP Offer #1"),
        ("u", "http://www.jdoe.example.com/home.html"),
        ("e", "Jane Doe <jane@jdoe.example.com>"),
        ("p", "+1 617 555-6011"),
        ("z", "2882844526 -1h 2898848070 0"),
        ("x", "vendor-specific line we do not know"),
    )
    assert sd.times == (Timing(0, 0, ("7d 1h 0 25h",)),)
    assert sd.bandwidths == (Bandwidth("CT", 128),)
    assert sd.attributes == (("recvonly", None), ("x-custom", None), ("charset", "UTF-8"))
    first, second, video = sd.media
    assert first.extra_lines == (("i", "main voice"), ("k", "prompt"))
    assert first.bandwidths == (Bandwidth("AS", 64), Bandwidth("TIAS", 64000))
    assert first.attributes == (Attribute("x-empty", ""),)  # "a=x-empty:" is not "a=x-empty"
    assert (second.port, second.port_count, second.attributes) == (49180, 2, ())
    assert video.connection == Connection("2001:db8::2", "IP6")


def test_lines_out_of_rfc_order_are_written_in_rfc_order() -> None:
    # LIVE555 and friends put lines out of order; serialize() writes RFC 8866 order and a
    # re-parse gives the same model.
    data = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nx=unknown\r\n"
            b"a=tool:cam\r\ni=late info\r\nc=IN IP4 10.0.0.1\r\n"
            b"m=audio 4000 RTP/AVP 0\r\nk=prompt\r\na=sendrecv\r\ni=late media info\r\n")
    sd = SessionDescription.parse(data)
    assert sd.extra_lines == (("i", "late info"), ("x", "unknown"))
    assert sd.media[0].extra_lines == (("i", "late media info"), ("k", "prompt"))
    assert sd.serialize() == (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\ni=late info\r\nc=IN IP4 10.0.0.1\r\n"
        b"t=0 0\r\nx=unknown\r\na=tool:cam\r\n"
        b"m=audio 4000 RTP/AVP 0\r\ni=late media info\r\nk=prompt\r\na=sendrecv\r\n")
    assert SessionDescription.parse(sd.serialize()) == sd


def test_non_utf8_bytes_survive_a_round_trip() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=Caf\xe9\r\nt=0 0\r\n"
    sd = SessionDescription.parse(data)
    assert sd.serialize() == data


def test_serialize_built_description() -> None:
    sd = SessionDescription(
        origin=Origin("switch", 42, 7, "192.0.2.1"),
        connection=Connection.for_address("192.0.2.1"),
        media=(
            MediaDescription("audio", 4000, "RTP/AVP", ("0",),
                             attributes=(Attribute("rtpmap", "0 PCMU/8000"),
                                         Attribute("sendrecv"))),
            MediaDescription("video", 0, "RTP/AVP", ("99",)),
        ),
    )
    assert sd.serialize() == (
        b"v=0\r\no=switch 42 7 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        b"m=video 0 RTP/AVP 99\r\n"
    )
    assert SessionDescription.parse(sd.serialize()) == sd
    assert repr(sd) == "<SessionDescription o=42/7 [audio:4000, video:0]>"
    assert Connection.for_address("2001:db8::1").address_type == "IP6"


def test_direction_algebra() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.RECVONLY.reversed() is Direction.SENDONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.from_flags(sends=False, receives=True) is Direction.RECVONLY


HEAD = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n"
AUDIO = "m=audio 4000 RTP/AVP 0\r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SDP is empty"),
        ("\r\n\r\n", "SDP is empty"),
        ("o=- 1 1 IN IP4 h\r\n", "SDP line 1: expected 'v=' line first"),
        ("v=1\r\n", "SDP line 1: unsupported SDP version '1'"),
        ("V=0\r\n", "SDP line 1: expected 'type=value'"),
        ("v=0\r\nbogus\r\n", "SDP line 2: expected 'type=value'"),
        ("v=0\r\na\r\n", "SDP line 2: expected 'type=value'"),
        ("v=0\r\no=- 1 1 IN IP4\r\n", "SDP line 2: malformed 'o=' line"),
        ("v=0\r\no=- x 1 IN IP4 h\r\n", "SDP line 2: invalid session id 'x'"),
        ("v=0\r\no=- 1 -1 IN IP4 h\r\n", "SDP line 2: invalid session version '-1'"),
        ("v=0\r\ns=-\r\nt=0 0\r\n", "SDP has no 'o=' line"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n", "SDP has no 's=' line"),
        (HEAD + "o=- 1 1 IN IP4 h\r\n", "SDP line 5: duplicate 'o=' line"),
        (HEAD + "s=again\r\n", "SDP line 5: duplicate 's=' line"),
        (HEAD + "v=0\r\n", "SDP line 5: duplicate 'v=' line"),
        (HEAD + "c=IN IP4\r\n", "SDP line 5: malformed 'c=' line"),
        (HEAD + "c=IN IP4 a\r\nc=IN IP4 b\r\n", "SDP line 6: duplicate 'c=' line"),
        (HEAD + "b=AS\r\n", "SDP line 5: malformed 'b=' line"),
        (HEAD + "b=AS:fast\r\n", "SDP line 5: invalid bandwidth 'fast'"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1d 1h 0\r\n",
         "SDP line 4: 'r=' line without a 't=' line"),
        (HEAD.replace("t=0 0", "t=0"), "SDP line 4: malformed 't=' line"),
        (HEAD + "a=:x\r\n", "SDP line 5: empty attribute name"),
        (HEAD + "m=audio 4000 RTP/AVP\r\n", "SDP line 5: malformed 'm=' line"),
        (HEAD + "m=audio 70000 RTP/AVP 0\r\n", "SDP line 5: invalid port '70000'"),
        (HEAD + "m=audio 4000/x RTP/AVP 0\r\n", "SDP line 5: invalid port count 'x'"),
        (HEAD + AUDIO + "t=0 0\r\n", "SDP line 6: 't=' line not allowed in a media description"),
        (HEAD + AUDIO + "o=- 1 1 IN IP4 h\r\n",
         "SDP line 6: 'o=' line not allowed in a media description"),
        (HEAD + AUDIO + "a=rtpmap:0 PCMU\r\n", "SDP line 6: malformed rtpmap '0 PCMU'"),
        (HEAD + AUDIO + "a=rtpmap:0\r\n", "SDP line 6: malformed rtpmap '0'"),
        (HEAD + AUDIO + "a=rtpmap:200 X/8000\r\n", "SDP line 6: invalid payload type '200'"),
        (HEAD + AUDIO + "a=rtpmap:0 PCMU/fast\r\n", "SDP line 6: invalid clock rate 'fast'"),
        (HEAD + AUDIO + "a=fmtp:\r\n", "SDP line 6: malformed fmtp ''"),
        (HEAD + AUDIO + "a=ptime:abc\r\n", "SDP line 6: invalid packet time 'abc'"),
        (HEAD + AUDIO + "a=ptime:0\r\n", "SDP line 6: invalid packet time '0'"),
        (HEAD + AUDIO + "a=maxptime:1e3\r\n", "SDP line 6: invalid packet time '1e3'"),
        (HEAD + AUDIO + "a=rtcp:x\r\n", "SDP line 6: invalid rtcp port 'x'"),
        (HEAD + AUDIO + "a=rtcp:5000 IN IP4\r\n", "SDP line 6: malformed rtcp '5000 IN IP4'"),
        (HEAD + AUDIO + "a=rtcp:\r\n", "SDP line 6: malformed rtcp ''"),
        ("v=0\r\no=- \udc80\ud800 1 IN IP4 h\r\n", "SDP is not encodable as UTF-8"),
    ],
)
def test_exact_errors(text: str, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert str(info.value) == message
    assert info.value.status == 400
    assert isinstance(info.value, RemoteProtocolError)
    assert isinstance(info.value, SipError)


def test_fractional_ptime_is_accepted() -> None:
    sd = SessionDescription.parse(HEAD + AUDIO + "a=ptime:2.5\r\n")
    assert sd.media[0].ptime_ms == 2.5


def test_every_truncation_of_a_fixture_parses_or_raises_sdp_error() -> None:
    data = fixture("grandstream_gxv_video.sdp")
    outcomes = set()
    for cut in range(len(data) + 1):
        try:
            sd = SessionDescription.parse(data[:cut])
        except SdpError:
            outcomes.add("error")
        else:
            outcomes.add("parsed")
            assert SessionDescription.parse(sd.serialize()) == sd
    assert outcomes == {"error", "parsed"}


def test_truncated_origin_line_error() -> None:
    data = fixture("yealink_t46.sdp")
    cut = data.index(b" IN IP4 10.0.0.21")
    with pytest.raises(SdpError, match=r"^SDP line 2: malformed 'o=' line$"):
        SessionDescription.parse(data[:cut])


# -- Hypothesis: only SdpError may escape, and what parses, round-trips -------------------

SDP_BYTES = st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b"=", b":", b"/", b"-", b"0",
                             b"65536", b"a=", b"m=", b"c=", b"t=", b"\xff", b"\x00", b"\t"])


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(fixture(draw(st.sampled_from(FIXTURE_NAMES))))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line"]))
        if operation == "insert":
            data[position:position] = draw(SDP_BYTES | st.binary(max_size=4))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 12))]
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        else:
            start = data.rfind(b"\n", 0, position) + 1
            end = data.find(b"\n", position)
            line = data[start:end + 1] if end != -1 else data[start:] + b"\r\n"
            data[start:start] = line
    return bytes(data)


def check_parse(data: bytes | str) -> None:
    try:
        sd = SessionDescription.parse(data)
    except SdpError:
        return
    assert SessionDescription.parse(sd.serialize()) == sd


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_sdp_error(data: bytes) -> None:
    check_parse(data)
    check_parse(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n" + data)


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_sdp_error(text: str) -> None:
    check_parse(text)
    check_parse(HEAD + AUDIO + text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixture())
def test_mutated_fixtures_raise_only_sdp_error_and_round_trip(data: bytes) -> None:
    check_parse(data)
