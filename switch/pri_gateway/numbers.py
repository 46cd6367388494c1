"""Telephone numbers as PRI gateways and phones in China send them, in one canonical
form (E.164, "+86..."), and caller-ID presentation and privacy (RFC 3325, RFC 3323).

China's plan (national significant number, NSN, after the country code 86):
- mobile: 1[3-9]X XXXX XXXX, 11 digits, dialled without a trunk prefix;
- fixed: area code + local number, dialled nationally with the trunk prefix 0.
  Area codes are 2 digits for 10 (Beijing) and 2X (Shanghai 21, Guangzhou 20, ...),
  3 digits otherwise (Shenzhen 755, ...); local numbers are 8 digits after a 2-digit
  code and 7 or 8 after a 3-digit one;
- 400/800 service numbers: 10 digits, dialled as they are. They are ordinary NSNs
  (+86 400 ...), so they get an E.164 form; `to_dialable` gives them back without 0;
- short service numbers (110, 120, 10086, 12345, 95555, ...): no E.164 form, kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from switch.pri_gateway.errors import PriGatewayError
from switch.sip import HeaderError, NameAddr, SipUri, TelUri

COUNTRY_CODE: Final = "86"
TRUNK_PREFIX: Final = "0"
INTERNATIONAL_PREFIX: Final = "00"
MAX_E164_DIGITS: Final = 15  # ITU-T E.164 §6: country code + NSN
_MAX_INPUT_CHARS: Final = 64  # separators included; anything longer is not a number

_SEPARATORS: Final = str.maketrans("", "", " \t-().")
_DIGITS: Final = frozenset("0123456789")

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SERVICE_400_800 = re.compile(r"[48]00[0-9]{7}")
# Area code then local number: 2-digit codes take 8-digit locals, 3-digit codes 7 or 8.
# Local numbers start with 2-8 in practice; 1 is accepted too (test and legacy lines
# use it), never 0, which is the trunk prefix.
_FIXED = re.compile(r"(10|2[0-9])([1-9][0-9]{7})|([3-9][0-9]{2})([1-9][0-9]{6,7})")
_AREA_CODE = re.compile(r"10|2[0-9]|[3-9][0-9]{2}")
_LOCAL = re.compile(r"[1-9][0-9]{6,7}")
# 3-digit emergency/public numbers (110, 119, 120, 122 ...), 5-digit carrier and
# government lines (10000, 10086, 10010, 12345 ...), 5-digit 95xxx/96xxx hotlines.
_SHORT_SERVICE = re.compile(r"1[0-9]{2}|1[0-9]{4}|9[56][0-9]{3}")
_INTERNAL = re.compile(r"[0-9]{2,8}")


class NumberError(PriGatewayError, ValueError):
    """Input that cannot be a telephone number at all (letters, empty, too long)."""


class NumberKind(Enum):
    MOBILE = "mobile"
    FIXED = "fixed"
    SERVICE_400_800 = "service_400_800"
    SHORT_SERVICE = "short_service"
    LOCAL = "local"  # 7-8 digit local number and no default area code to place it
    INTERNATIONAL = "international"
    INTERNAL = "internal"  # an extension, only when the caller says the number is internal
    UNKNOWN = "unknown"  # digits, but no shape we know; passed on as they are


@dataclass(frozen=True, slots=True)
class NormalizedNumber:
    """`e164` is "+<digits>" or None when the number has no global form; `national`
    is how it is dialled inside China (trunk prefix 0 for fixed lines, 00 abroad)."""

    e164: str | None
    national: str
    kind: NumberKind
    area_code: str | None = None

    def __repr__(self) -> str:
        return f"NormalizedNumber({self.e164 or self.national!r}, {self.kind.value})"


def _clean(number: str) -> str:
    if len(number) > _MAX_INPUT_CHARS:
        raise NumberError(f"number too long: {number[:_MAX_INPUT_CHARS]!r}...")
    digits = number.strip().translate(_SEPARATORS)
    if not digits:
        raise NumberError("empty number")
    for i, ch in enumerate(digits):
        if ch not in _DIGITS and not (ch == "+" and i == 0):
            raise NumberError(f"invalid character {ch!r} in number {number!r}")
    if digits == "+":
        raise NumberError(f"no digits in number {number!r}")
    return digits


def _china_nsn(nsn: str, original: str) -> NormalizedNumber:
    """A number after +86: mobile, fixed (area code + local) or 400/800."""
    e164 = "+" + COUNTRY_CODE + nsn
    if _MOBILE.fullmatch(nsn):
        return NormalizedNumber(e164, nsn, NumberKind.MOBILE)
    if _SERVICE_400_800.fullmatch(nsn):
        return NormalizedNumber(e164, nsn, NumberKind.SERVICE_400_800)
    m = _FIXED.fullmatch(nsn)
    if m is not None:
        area = m.group(1) or m.group(3)
        return NormalizedNumber(e164, TRUNK_PREFIX + nsn, NumberKind.FIXED, area)
    return NormalizedNumber(None, original, NumberKind.UNKNOWN)


def _international(digits: str, original: str) -> NormalizedNumber:
    """`digits` after the international prefix (00 or +)."""
    if len(digits) > MAX_E164_DIGITS:
        raise NumberError(f"number too long: {original!r} has {len(digits)} digits after "
                          f"the international prefix, E.164 allows {MAX_E164_DIGITS}")
    if digits.startswith(COUNTRY_CODE):
        return _china_nsn(digits[len(COUNTRY_CODE):], original)
    if len(digits) < 7 or digits.startswith("0"):  # no country code starts with 0
        return NormalizedNumber(None, original, NumberKind.UNKNOWN)
    return NormalizedNumber("+" + digits, INTERNATIONAL_PREFIX + digits,
                            NumberKind.INTERNATIONAL)


def _check_area_code(code: str) -> str:
    bare = code[1:] if code.startswith(TRUNK_PREFIX) else code
    if not _AREA_CODE.fullmatch(bare):
        raise NumberError(f"invalid default area code {code!r}")
    return bare


def normalize(number: str, *, default_area_code: str | None = None,
              internal: bool = False) -> NormalizedNumber:
    """Classify and canonicalise a number from a gateway or a phone.

    Separators (spaces, dashes, parentheses, dots) are ignored. A 7-8 digit local
    number becomes a fixed line in `default_area_code` ("755" or "0755") when one is
    given. With `internal=True` (the number was dialled or presented on our side), a
    2-8 digit number that is nothing else is an extension. Raises NumberError only
    for input that is no number at all."""
    area = _check_area_code(default_area_code) if default_area_code is not None else None
    digits = _clean(number)
    if digits.startswith("+"):
        return _international(digits[1:], digits)
    if digits.startswith(INTERNATIONAL_PREFIX):
        return _international(digits[len(INTERNATIONAL_PREFIX):], digits)
    if len(digits) > MAX_E164_DIGITS:
        raise NumberError(f"number too long: {number!r} has {len(digits)} digits")
    # 86 + NSN without "+": an NSN is at least 10 digits, local numbers at most 8, so
    # 12-13 digits starting with 86 can only carry the country code.
    if digits.startswith(COUNTRY_CODE) and len(digits) in (12, 13):
        return _china_nsn(digits[len(COUNTRY_CODE):], digits)
    if _MOBILE.fullmatch(digits):
        return _china_nsn(digits, digits)
    if digits.startswith(TRUNK_PREFIX):
        nsn = digits[len(TRUNK_PREFIX):]
        # Some exchanges put the trunk prefix before an out-of-area mobile: 0139...
        if _MOBILE.fullmatch(nsn) or _FIXED.fullmatch(nsn):
            return _china_nsn(nsn, digits)
        return NormalizedNumber(None, digits, NumberKind.UNKNOWN)
    if _SERVICE_400_800.fullmatch(digits):
        return _china_nsn(digits, digits)
    if _SHORT_SERVICE.fullmatch(digits):
        return NormalizedNumber(None, digits, NumberKind.SHORT_SERVICE)
    if _LOCAL.fullmatch(digits):
        if area is not None and _FIXED.fullmatch(area + digits):
            return _china_nsn(area + digits, digits)
        if area is None:
            return NormalizedNumber(None, digits, NumberKind.LOCAL)
    if internal and _INTERNAL.fullmatch(digits):
        return NormalizedNumber(None, digits, NumberKind.INTERNAL)
    return NormalizedNumber(None, digits, NumberKind.UNKNOWN)


def to_dialable(e164: str, *, trunk_prefix: str = TRUNK_PREFIX,
                international_prefix: str = INTERNATIONAL_PREFIX) -> str:
    """The called number to send to a PRI gateway: mobiles and 400/800 as their 10-11
    digits, fixed lines as trunk prefix + area code + local, other countries as
    international prefix + E.164 digits. Raises NumberError for anything but E.164."""
    if not e164.startswith("+"):
        raise NumberError(f"not an E.164 number (no '+'): {e164!r}")
    parsed = normalize(e164)
    if parsed.e164 != e164:
        raise NumberError(f"not a valid E.164 number: {e164!r}")
    digits = e164[1:]
    if parsed.kind is NumberKind.INTERNATIONAL:
        return international_prefix + digits
    nsn = digits[len(COUNTRY_CODE):]
    return trunk_prefix + nsn if parsed.kind is NumberKind.FIXED else nsn


# ---- caller identity (RFC 3325 P-Asserted-Identity, RFC 3323 Privacy) -------------

ANONYMOUS_FROM: Final = '"Anonymous" <sip:anonymous@anonymous.invalid>'  # RFC 3323 §4.1.1.3
_HIDING_PRIVACY: Final = frozenset({"id", "header", "user"})  # RFC 3323 §4.2, RFC 3325 §9.3


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """Who is calling, as call control and CDRs see it. `number` is the user part of
    the asserted (or From) URI; `restricted` means presentation is not allowed."""

    number: str
    display: str | None
    restricted: bool
    host: str | None = None  # None: the identity was a tel: URI

    @classmethod
    def from_headers(cls, p_asserted_identity: str | None, privacy: str | None,
                     from_value: str) -> CallerIdentity:
        """Identity from a request's headers; P-Asserted-Identity wins over From (it is
        only believed from a trusted peer: the caller decides whether to pass it).
        Raises HeaderError/UriError (400) on values that do not parse."""
        source = from_value
        if p_asserted_identity is not None and p_asserted_identity.strip():
            # RFC 3325 §9.1: up to one sip/sips and one tel URI; the first one will do.
            source = _first_list_item(p_asserted_identity)
        addr = NameAddr.parse(source.strip())
        number, host = _user_and_host(addr)
        tokens = {t.strip().lower() for t in re.split(r"[;,]", privacy or "") if t.strip()}
        anonymous = (host or "").lower() == "anonymous.invalid" or number.lower() == "anonymous"
        return cls(number, addr.display_name, bool(tokens & _HIDING_PRIVACY) or anonymous,
                   host)

    def to_headers(self, trust_boundary: bool) -> dict[str, str]:
        """Identity headers for the next hop. `trust_boundary=True` means the next hop
        is outside our trust domain: no P-Asserted-Identity (RFC 3325 §5), and a
        restricted identity leaves as the anonymous From. Inside the trust domain
        the real From and P-Asserted-Identity go with Privacy: id when restricted, so
        a PRI gateway sets presentation restricted. From has no tag: the leg adds it."""
        if trust_boundary and self.restricted:
            return {"From": ANONYMOUS_FROM}
        uri = (TelUri(self.number) if self.host is None
               else SipUri(self.host, user=self.number))
        addr = NameAddr(uri, self.display).serialize()
        if trust_boundary:
            return {"From": addr}
        headers = {"From": addr, "P-Asserted-Identity": addr}
        if self.restricted:
            headers["Privacy"] = "id"
        return headers


def _first_list_item(value: str) -> str:
    """The first element of a name-addr list; commas inside quotes or <> do not split."""
    depth_angle = 0
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
        elif ch == "<":
            depth_angle += 1
        elif ch == ">":
            depth_angle -= 1
        elif ch == "," and depth_angle == 0:
            return value[:i]
    return value


def _user_and_host(addr: NameAddr) -> tuple[str, str | None]:
    uri = addr.uri
    if isinstance(uri, SipUri):
        return uri.user or "", uri.host
    if isinstance(uri, TelUri):
        return uri.number, None
    # RFC 3325 §9.1 allows sip, sips and tel; anything else identifies no caller.
    raise HeaderError(f"identity must be a sip, sips or tel URI, got {uri.scheme}:")
