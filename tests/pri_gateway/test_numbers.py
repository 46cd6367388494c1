"""China number normalisation and caller identity (RFC 3325 / RFC 3323)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from switch.pri_gateway import (
    CallerIdentity,
    NormalizedNumber,
    NumberError,
    NumberKind,
    normalize,
    to_dialable,
)
from switch.sip import RemoteProtocolError

M, F, S4, SS, L, INTL, INT, U = (
    NumberKind.MOBILE, NumberKind.FIXED, NumberKind.SERVICE_400_800,
    NumberKind.SHORT_SERVICE, NumberKind.LOCAL, NumberKind.INTERNATIONAL,
    NumberKind.INTERNAL, NumberKind.UNKNOWN)


@pytest.mark.parametrize(("raw", "expected"), [
    # Beijing, Shanghai, Guangzhou: 2-digit area codes, 8-digit locals.
    ("010 12345678", NormalizedNumber("+861012345678", "01012345678", F, "10")),
    ("(010) 6552-9988", NormalizedNumber("+861065529988", "01065529988", F, "10")),
    ("021-6888 1234", NormalizedNumber("+862168881234", "02168881234", F, "21")),
    ("020.3866.7788", NormalizedNumber("+862038667788", "02038667788", F, "20")),
    ("+86 10 6552 9988", NormalizedNumber("+861065529988", "01065529988", F, "10")),
    ("0086 21 6888 1234", NormalizedNumber("+862168881234", "02168881234", F, "21")),
    ("862168881234", NormalizedNumber("+862168881234", "02168881234", F, "21")),
    # Shenzhen and others: 3-digit area codes, 7- or 8-digit locals.
    ("0755-8765 4321", NormalizedNumber("+8675587654321", "075587654321", F, "755")),
    ("+86 755 8765 4321", NormalizedNumber("+8675587654321", "075587654321", F, "755")),
    ("0898 6123456", NormalizedNumber("+868986123456", "08986123456", F, "898")),
    # Mobiles 13x-19x in every dress.
    ("13912345678", NormalizedNumber("+8613912345678", "13912345678", M)),
    ("139 1234 5678", NormalizedNumber("+8613912345678", "13912345678", M)),
    ("+86 150-0000-1111", NormalizedNumber("+8615000001111", "15000001111", M)),
    ("008616612345678", NormalizedNumber("+8616612345678", "16612345678", M)),
    ("8617712345678", NormalizedNumber("+8617712345678", "17712345678", M)),
    ("18600000000", NormalizedNumber("+8618600000000", "18600000000", M)),
    ("19912345678", NormalizedNumber("+8619912345678", "19912345678", M)),
    ("014712345678", NormalizedNumber("+8614712345678", "14712345678", M)),
    # 400/800 service numbers.
    ("400-810-8888", NormalizedNumber("+864008108888", "4008108888", S4)),
    ("800 820 8820", NormalizedNumber("+868008208820", "8008208820", S4)),
    ("+86 400 810 8888", NormalizedNumber("+864008108888", "4008108888", S4)),
    # Short service numbers stay as they are.
    ("10086", NormalizedNumber(None, "10086", SS)),
    ("110", NormalizedNumber(None, "110", SS)),
    ("120", NormalizedNumber(None, "120", SS)),
    ("12345", NormalizedNumber(None, "12345", SS)),
    ("95555", NormalizedNumber(None, "95555", SS)),
    # International.
    ("001 415 555 0123", NormalizedNumber("+14155550123", "0014155550123", INTL)),
    ("+44 20 7946 0958", NormalizedNumber("+442079460958", "00442079460958", INTL)),
    ("+852 2345 6789", NormalizedNumber("+85223456789", "0085223456789", INTL)),
    # Local without an area code known.
    ("6552 9988", NormalizedNumber(None, "65529988", L)),
    ("6123456", NormalizedNumber(None, "6123456", L)),
    # Digits of no known shape.
    ("0101234567", NormalizedNumber(None, "0101234567", U)),
    ("+86 123", NormalizedNumber(None, "+86123", U)),
    ("+123", NormalizedNumber(None, "+123", U)),
    ("8001", NormalizedNumber(None, "8001", U)),
    ("0", NormalizedNumber(None, "0", U)),
])
def test_normalize(raw: str, expected: NormalizedNumber) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(("raw", "area", "expected"), [
    ("65529988", "10", NormalizedNumber("+861065529988", "01065529988", F, "10")),
    ("87654321", "0755", NormalizedNumber("+8675587654321", "075587654321", F, "755")),
    ("6123456", "898", NormalizedNumber("+868986123456", "08986123456", F, "898")),
    ("6123456", "10", NormalizedNumber(None, "6123456", U)),  # Beijing locals are 8 digits
    ("13912345678", "10", NormalizedNumber("+8613912345678", "13912345678", M)),
    ("110", "10", NormalizedNumber(None, "110", SS)),
])
def test_normalize_with_default_area_code(raw: str, area: str,
                                          expected: NormalizedNumber) -> None:
    assert normalize(raw, default_area_code=area) == expected


@pytest.mark.parametrize(("raw", "kind"), [("8001", INT), ("42", INT), ("2001", INT),
                                           ("10086", SS), ("7", U), ("123456789", U)])
def test_internal_extensions(raw: str, kind: NumberKind) -> None:
    assert normalize(raw, internal=True).kind is kind


@pytest.mark.parametrize(("raw", "message"), [
    ("", "empty number"),
    (" - ", "empty number"),
    ("+", "no digits in number '+'"),
    ("139abc45678", "invalid character 'a' in number '139abc45678'"),
    ("1391234567８", "invalid character '８' in number '1391234567８'"),
    ("86+10", "invalid character '+' in number '86+10'"),
    ("sip:10086", "invalid character 's' in number 'sip:10086'"),
    ("+1234567890123456", "number too long: '+1234567890123456' has 16 digits after the "
                          "international prefix, E.164 allows 15"),
    ("1234567890123456", "number too long: '1234567890123456' has 16 digits"),
    ("1" * 65, "number too long: '" + "1" * 64 + "'..."),
])
def test_invalid_numbers(raw: str, message: str) -> None:
    with pytest.raises(NumberError) as info:
        normalize(raw)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("area", ["", "1", "0", "01", "11", "2", "0755a", "7555", "0010"])
def test_invalid_default_area_code(area: str) -> None:
    with pytest.raises(NumberError, match=f"^invalid default area code '{area}'$"):
        normalize("65529988", default_area_code=area)


@pytest.mark.parametrize(("e164", "dialable"), [
    ("+8613912345678", "13912345678"),
    ("+861065529988", "01065529988"),
    ("+8675587654321", "075587654321"),
    ("+864008108888", "4008108888"),
    ("+14155550123", "0014155550123"),
])
def test_to_dialable(e164: str, dialable: str) -> None:
    assert to_dialable(e164) == dialable


def test_to_dialable_with_other_prefixes() -> None:
    assert to_dialable("+861065529988", trunk_prefix="") == "1065529988"
    assert to_dialable("+14155550123", international_prefix="+") == "+14155550123"


@pytest.mark.parametrize(("value", "message"), [
    ("13912345678", "not an E.164 number (no '+'): '13912345678'"),
    ("+86 139 1234 5678", "not a valid E.164 number: '+86 139 1234 5678'"),
    ("+86123", "not a valid E.164 number: '+86123'"),
])
def test_to_dialable_refuses_anything_but_e164(value: str, message: str) -> None:
    with pytest.raises(NumberError) as info:
        to_dialable(value)
    assert str(info.value) == message


@given(st.text(max_size=30))
@example("+")
@example("00")
@example("+00")
@example("0086")
@example("١٢٣")
def test_normalize_raises_only_number_error(raw: str) -> None:
    try:
        result = normalize(raw, internal=True)
    except NumberError:
        return
    if result.e164 is not None:
        assert result.e164.startswith("+") and result.e164[1:].isdigit()
        assert len(result.e164) <= 16


_e164_china = st.one_of(
    st.from_regex(r"\+861[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"\+86[48]00[0-9]{7}", fullmatch=True),
    st.from_regex(r"\+86(10|2[0-9])[1-9][0-9]{7}", fullmatch=True),
    st.from_regex(r"\+86[3-9][0-9]{2}[1-9][0-9]{6,7}", fullmatch=True),
    st.from_regex(r"\+[1-79][0-9]{6,14}", fullmatch=True),
)


@given(_e164_china)
def test_dialable_round_trips(e164: str) -> None:
    parsed = normalize(e164)
    assert parsed.e164 == e164
    assert normalize(to_dialable(e164)) == parsed


# ---- caller identity ----------------------------------------------------------------

def test_identity_from_p_asserted_identity() -> None:
    ident = CallerIdentity.from_headers(
        '"Zhang San" <sip:+8613912345678@gw1.example.cn;user=phone>, <tel:+8613912345678>',
        None, "<sip:13912345678@10.0.0.5>;tag=a1")
    assert ident == CallerIdentity("+8613912345678", "Zhang San", False, "gw1.example.cn")


def test_identity_falls_back_to_from() -> None:
    ident = CallerIdentity.from_headers(None, "none", '"Li Si" <sip:8001@pbx.local>;tag=x')
    assert ident == CallerIdentity("8001", "Li Si", False, "pbx.local")


def test_identity_from_tel_uri() -> None:
    ident = CallerIdentity.from_headers("<tel:+861065529988>", None, "sip:a@b")
    assert ident == CallerIdentity("+861065529988", None, False, None)
    assert ident.to_headers(trust_boundary=False) == {
        "From": "<tel:+861065529988>", "P-Asserted-Identity": "<tel:+861065529988>"}


@pytest.mark.parametrize("privacy", ["id", "ID", "header;id", "user", "header", " id ; critical"])
def test_privacy_restricts_presentation(privacy: str) -> None:
    ident = CallerIdentity.from_headers("<sip:+8613912345678@gw1>", privacy, "sip:a@b")
    assert ident.restricted


@pytest.mark.parametrize("privacy", [None, "", "none", "session", "critical"])
def test_privacy_without_hiding_keeps_presentation(privacy: str | None) -> None:
    ident = CallerIdentity.from_headers("<sip:+8613912345678@gw1>", privacy, "sip:a@b")
    assert not ident.restricted


def test_anonymous_from_is_restricted() -> None:
    ident = CallerIdentity.from_headers(
        None, None, '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1')
    assert ident.restricted


def test_restricted_identity_headers_inside_and_outside_the_trust_domain() -> None:
    ident = CallerIdentity("+8613912345678", "Zhang San", True, "sw.example.cn")
    assert ident.to_headers(trust_boundary=False) == {
        "From": "Zhang San <sip:+8613912345678@sw.example.cn>",
        "P-Asserted-Identity": "Zhang San <sip:+8613912345678@sw.example.cn>",
        "Privacy": "id",
    }
    assert ident.to_headers(trust_boundary=True) == {
        "From": '"Anonymous" <sip:anonymous@anonymous.invalid>'}


def test_chinese_display_name_is_quoted_and_round_trips() -> None:
    ident = CallerIdentity("13912345678", "张三", False, "sw.example.cn")
    headers = ident.to_headers(trust_boundary=False)
    assert headers["From"] == '"张三" <sip:13912345678@sw.example.cn>'
    assert CallerIdentity.from_headers(headers["P-Asserted-Identity"], None,
                                       headers["From"]) == ident


def test_presented_identity_never_asserts_outside_the_trust_domain() -> None:
    ident = CallerIdentity("075587654321", None, False, "sw.example.cn")
    assert ident.to_headers(trust_boundary=True) == {
        "From": "<sip:075587654321@sw.example.cn>"}
    assert ident.to_headers(trust_boundary=False) == {
        "From": "<sip:075587654321@sw.example.cn>",
        "P-Asserted-Identity": "<sip:075587654321@sw.example.cn>"}


@pytest.mark.parametrize(("pai", "from_value"), [
    ("<mailto:a@b.example>", "sip:a@b"),
    (None, "<http://example.com>"),
    ("<sip:a@b", "sip:a@b"),
])
def test_bad_identity_headers_answer_400(pai: str | None, from_value: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        CallerIdentity.from_headers(pai, None, from_value)
    assert info.value.status == 400
