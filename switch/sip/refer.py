"""Call transfer wire types: REFER's Refer-To (RFC 3515), Replaces (RFC 3891),
Referred-By (RFC 3892), Refer-Sub (RFC 4488) and the sipfrag NOTIFY bodies that report
a transfer's progress (RFC 3515 §2.4.5, RFC 3420).

Pure values only: call control decides what a REFER does; this module says what its
headers mean. Every parse error is a `ReferError`, a RemoteProtocolError whose status
(400) is what the REFER or INVITE carrying the bad header is answered with.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from switch.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from switch.sip.headers import (
    QUOTED_RE,
    TOKEN_RE,
    NameAddr,
    QuotedStr,
    format_params,
    is_token,
    unquote,
)
from switch.sip.status import reason_phrase
from switch.sip.uri import SipUri, Uri, escape

__all__ = [
    "NOREFERSUB_OPTION_TAG", "SIPFRAG_CONTENT_TYPE", "ReferError", "ReferTo", "ReferredBy",
    "Replaces", "notify_headers", "parse_sipfrag", "refer_sub_wanted", "sipfrag",
]


class ReferError(RemoteProtocolError):
    """A Refer-To, Replaces, Referred-By, Refer-Sub or sipfrag that breaks its grammar."""


SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"  # RFC 3515 §2.4.5, RFC 3420 §2
NOREFERSUB_OPTION_TAG = "norefersub"  # RFC 4488 §4: Supported/Require option tag
REFER_EVENT = "refer"  # RFC 3515 §3: the event package of the implicit subscription
REPLACES_URI_HEADER = "Replaces"  # RFC 3891 §4: how a Refer-To URI carries one

# RFC 3261 §25.1 hnv-unreserved plus unreserved: what a URI header value may hold
# unescaped. '@', ';' and '=' are not in it, which is why Replaces values travel as
# "%40", "%3B" and "%3D" inside a Refer-To URI (RFC 3891 §7 examples).
_HVALUE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "-_.!~*'()[]/?:+$")

# RFC 3261 §25.1 callid = word [ "@" word ].
_WORD_RE = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID = re.compile(rf"{_WORD_RE}(?:@{_WORD_RE})?")
# One ";name[=value]" generic-param (RFC 3261 §25.1: gen-value = token / host /
# quoted-string), with the LWS SEMI and EQUAL allow.
_GENERIC_PARAM = re.compile(
    rf"[ \t]*;[ \t]*({TOKEN_RE})(?:[ \t]*=[ \t]*({TOKEN_RE}|{QUOTED_RE}|\[[0-9A-Fa-f:.]+\]))?"
    r"[ \t]*")


def _generic_params(text: str, what: str) -> list[tuple[str, str | None]]:
    """';name=value;flag' as (lower-case name, value) pairs in order, duplicates kept
    (RFC 3891 requires exactly one to-tag and one from-tag, so they must be countable).
    Quoted values come back as QuotedStr so they are quoted again on output."""
    items: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(text):
        m = _GENERIC_PARAM.match(text, pos)
        if m is None:
            raise ReferError(f"bad parameter in {what}: {text[pos:][:60]!r}")
        name, value = m.group(1).lower(), m.group(2)
        if value is not None and value.startswith('"'):
            value = QuotedStr(unquote(value))
        items.append((name, value))
        pos = m.end()
    return items


@dataclass(frozen=True, slots=True)
class Replaces:
    """The dialog an INVITE with Replaces takes over (RFC 3891 §6.1), seen from the UA
    that receives it: `to_tag` is that UA's local tag, `from_tag` its peer's."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False  # replace only an early dialog (RFC 3891 §3)
    params: dict[str, str | None] = field(default_factory=dict)  # other generic-params

    def __post_init__(self) -> None:
        if _CALLID.fullmatch(self.call_id) is None:
            raise LocalProtocolError(f"bad Call-ID for Replaces: {self.call_id!r}")
        for name, tag in (("to-tag", self.to_tag), ("from-tag", self.from_tag)):
            if not is_token(tag):
                raise LocalProtocolError(f"bad {name} for Replaces: {tag!r}")

    @classmethod
    def parse(cls, value: str) -> Replaces:
        """A Replaces header value: callid *(SEMI replaces-param)."""
        call_id, _, rest = value.strip(" \t").partition(";")
        call_id = call_id.rstrip(" \t")
        if _CALLID.fullmatch(call_id) is None:
            raise ReferError(f"bad Call-ID in Replaces: {call_id[:80]!r}")
        tags: dict[str, list[str]] = {"to-tag": [], "from-tag": []}
        early_only = False
        params: dict[str, str | None] = {}
        for name, param in _generic_params(";" + rest if rest else "", "Replaces"):
            if name in tags:
                if param is None or isinstance(param, QuotedStr) or not is_token(param):
                    raise ReferError(f"Replaces {name} must be a token")
                tags[name].append(param)
            elif name == "early-only":
                if param is not None:
                    raise ReferError("Replaces early-only takes no value")
                early_only = True
            else:
                params[name] = param
        # §6.1: "exactly one to-tag and exactly one from-tag", since both are needed
        # to name a dialog uniquely.
        for name, found in tags.items():
            if len(found) != 1:
                raise ReferError(f"Replaces needs exactly one {name}, got {len(found)}")
        return cls(call_id, tags["to-tag"][0], tags["from-tag"][0], early_only, params)

    def serialize(self) -> str:
        early = ";early-only" if self.early_only else ""
        return (f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"
                f"{format_params(self.params)}")

    def as_uri_header(self) -> str:
        """'Replaces=<escaped value>', the hname=hvalue pair that goes after '?' in a
        Refer-To URI (RFC 3891 §7: '@' -> %40, ';' -> %3B, '=' -> %3D)."""
        return f"{REPLACES_URI_HEADER}={escape(self.serialize(), _HVALUE_SAFE)}"

    def matches(self, call_id: str, local_tag: str, remote_tag: str | None) -> bool:
        """Whether this names the dialog (call_id, local_tag, remote_tag) of the UA that
        received it. §6.1: a tag of "0" also matches a null tag (RFC 2543 peers)."""
        return (self.call_id == call_id and _tag_matches(self.to_tag, local_tag)
                and _tag_matches(self.from_tag, remote_tag))

    def __repr__(self) -> str:
        return f"Replaces({self.serialize()!r})"


def _tag_matches(wanted: str, actual: str | None) -> bool:
    if wanted == "0":
        return actual is None or actual == "0"
    return wanted == actual


def _replaces_keys(uri: Uri) -> list[str]:
    if not isinstance(uri, SipUri):
        return []
    # URI header names are header names: case-insensitive (RFC 3261 §7.3.1).
    return [name for name in uri.headers if name.lower() == "replaces"]


@dataclass(frozen=True, slots=True)
class ReferTo:
    """A Refer-To value (RFC 3515 §2.1). `uri` keeps every embedded header except
    Replaces, which is parsed into `replaces`; `params` are the header's own params."""

    uri: Uri
    replaces: Replaces | None = None
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if _replaces_keys(self.uri):
            raise LocalProtocolError("pass Replaces as ReferTo.replaces, not in the URI")
        if self.replaces is not None and not isinstance(self.uri, SipUri):
            raise LocalProtocolError(f"a {self.uri.scheme}: URI cannot carry Replaces")

    @classmethod
    def parse(cls, value: str) -> ReferTo:
        """name-addr / addr-spec *(SEMI generic-param); a URI with '?' must be in <>."""
        try:
            address = NameAddr.parse(value)
        except SipError as exc:
            raise ReferError(f"bad Refer-To: {exc}") from exc
        uri = address.uri
        replaces = None
        keys = _replaces_keys(uri)
        if keys:
            assert isinstance(uri, SipUri)
            if len(keys) > 1:
                raise ReferError("Refer-To URI carries Replaces more than once")
            replaces = Replaces.parse(uri.headers[keys[0]])
            others = {k: v for k, v in uri.headers.items() if k != keys[0]}
            uri = dataclasses.replace(uri, headers=others)
        return cls(uri, replaces, address.display_name, address.params)

    def serialize(self) -> str:
        uri = self.uri
        if self.replaces is not None:
            assert isinstance(uri, SipUri)
            uri = dataclasses.replace(
                uri, headers={**uri.headers, REPLACES_URI_HEADER: self.replaces.serialize()})
        return NameAddr(uri, self.display_name, self.params).serialize()

    @property
    def target(self) -> Uri:
        """The Request-URI of the request the referee sends: no embedded headers."""
        return self.uri.without_headers() if isinstance(self.uri, SipUri) else self.uri

    @property
    def embedded_headers(self) -> dict[str, str]:
        """Headers other than Replaces that the URI asks the referee to put into its
        request (RFC 3261 §19.1.5), unescaped."""
        return dict(self.uri.headers) if isinstance(self.uri, SipUri) else {}

    @property
    def method(self) -> str:
        """The method the referee is asked to use: the URI's `method` param or INVITE
        (RFC 3515 §2.1 example; RFC 3261 §19.1.1)."""
        if isinstance(self.uri, SipUri):
            return (self.uri.params.get("method") or "INVITE").upper()
        return "INVITE"

    def __repr__(self) -> str:
        return f"ReferTo({self.serialize()!r})"


@dataclass(frozen=True, slots=True)
class ReferredBy:
    """A Referred-By value (RFC 3892 §3): who asked for the transfer, copied by the
    referee into the request it sends. `cid` names an S/MIME token body, if any."""

    uri: Uri
    display_name: str | None = None
    cid: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)  # other generic-params

    @classmethod
    def parse(cls, value: str) -> ReferredBy:
        try:
            address = NameAddr.parse(value)
        except SipError as exc:
            raise ReferError(f"bad Referred-By: {exc}") from exc
        params = dict(address.params)
        cid = params.pop("cid", None)
        if "cid" in address.params and not isinstance(cid, QuotedStr):
            # referredby-id-param = "cid" EQUAL sip-clean-msg-id, which is quoted.
            raise ReferError("Referred-By cid must be a quoted msg-id")
        return cls(address.uri, address.display_name, cid, params)

    def serialize(self) -> str:
        params = dict(self.params)
        if self.cid is not None:
            params = {"cid": QuotedStr(self.cid), **params}
        return NameAddr(self.uri, self.display_name, params).serialize()

    def __repr__(self) -> str:
        return f"ReferredBy({self.serialize()!r})"


# RFC 4488 §3: Refer-Sub = "Refer-Sub" HCOLON refer-sub-value *(SEMI exten).
_REFER_SUB_VALUES = {"true": True, "false": False}


def refer_sub_wanted(value: str | None) -> bool:
    """Whether a REFER asks for the implicit subscription: no Refer-Sub header means
    yes (RFC 3515); "Refer-Sub: false" means no NOTIFYs (RFC 4488 §4). A recipient
    that honours "false" must say so with "Refer-Sub: false" in its 2xx."""
    if value is None:
        return True
    head, _, rest = value.partition(";")
    wanted = _REFER_SUB_VALUES.get(head.strip(" \t").lower())
    if wanted is None:
        raise ReferError(f"Refer-Sub must be true or false, got {head.strip()[:40]!r}")
    _generic_params(";" + rest if rest else "", "Refer-Sub")
    return wanted


# --- NOTIFY for the refer event package (RFC 3515 §2.4.4-§2.4.7) --------------------

_MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5
_STATUS_LINE = re.compile(rb"SIP/2\.0 ([1-6][0-9]{2}) ([^\r\n]*)(?:\r?\n|\Z)")


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """A NOTIFY body reporting the referee's request: its status line (RFC 3515
    §2.4.5: the body MUST begin with a Status-Line; nothing else is needed)."""
    if not 100 <= status <= 699:
        raise LocalProtocolError(f"status {status} is not a SIP status")
    text = reason_phrase(status) if reason is None else reason
    if "\r" in text or "\n" in text:
        raise LocalProtocolError(f"reason phrase {text!r} contains a line break")
    return f"SIP/2.0 {status} {text}\r\n".encode()


def parse_sipfrag(body: bytes) -> int:
    """The status of a refer NOTIFY body. Anything after the status line (headers of
    a fuller sipfrag, RFC 3420) is ignored; a line ending may be missing at the end."""
    if not body:
        raise ReferError("empty sipfrag body")
    m = _STATUS_LINE.match(body)
    if m is None:
        first = body.split(b"\n", 1)[0][:80]
        raise ReferError(f"sipfrag body does not start with a SIP status line: {first!r}")
    return int(m.group(1))


def notify_headers(refer_cseq: int, *, terminated: bool,
                   expires_s: int = 60) -> list[tuple[str, str]]:
    """Event, Subscription-State and Content-Type of a NOTIFY for the REFER whose CSeq
    is `refer_cseq`: the id ties the NOTIFY to that REFER (RFC 3515 §2.4.6). The last
    NOTIFY, after a final response, ends the subscription (§2.4.7)."""
    if not 0 <= refer_cseq <= _MAX_CSEQ:
        raise LocalProtocolError(f"REFER CSeq {refer_cseq} is out of range")
    if expires_s < 0:
        raise LocalProtocolError(f"expires_s must not be negative: {expires_s}")
    state = "terminated;reason=noresource" if terminated else f"active;expires={expires_s}"
    return [
        ("Event", f"{REFER_EVENT};id={refer_cseq}"),
        ("Subscription-State", state),
        ("Content-Type", SIPFRAG_CONTENT_TYPE),
    ]
