"""Checks a UAS core applies to every new request before any application sees it
(RFC 3261 §8.2.1-§8.2.2, §16.3 for Max-Forwards). Pure functions: request in,
rejection out (or None to go on)."""

from __future__ import annotations

from switch.sip.headers import HeaderError
from switch.sip.message import Request, Response, build_response
from switch.sip.uri import SipUri, TelUri

# Methods this switch serves, and those it knows but does not serve (405 + Allow).
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "REFER",
                   "UPDATE", "INFO", "NOTIFY", "PRACK")
KNOWN_METHODS = frozenset(ALLOWED_METHODS) | {"SUBSCRIBE", "MESSAGE", "PUBLISH"}
# Option tags we understand in Require (RFC 3261 §8.2.2.3); 100rel: RFC 3262.
SUPPORTED_OPTIONS = ("replaces", "timer", "path", "outbound", "100rel")
ALLOW_VALUE = ", ".join(ALLOWED_METHODS)


def screen_request(request: Request, *, to_tag: str) -> Response | None:
    """The rejection for a request no application may see, or None."""
    if not isinstance(request.uri, SipUri | TelUri):
        return build_response(request, 416, to_tag=to_tag)  # §8.2.2.1
    try:
        max_forwards = request.max_forwards
    except HeaderError:
        return build_response(request, 400, "Bad Max-Forwards", to_tag=to_tag)
    if max_forwards == 0 and request.method not in ("OPTIONS", "ACK"):
        return build_response(request, 483, to_tag=to_tag)
    if request.method not in KNOWN_METHODS:
        response = build_response(request, 501, to_tag=to_tag)
        response.headers.add("Allow", ALLOW_VALUE)
        return response
    if request.method not in ALLOWED_METHODS:
        response = build_response(request, 405, to_tag=to_tag)
        response.headers.add("Allow", ALLOW_VALUE)
        return response
    if request.method not in ("ACK", "CANCEL"):
        unsupported = [tag for value in request.headers.get_all("Require")
                       for tag in (t.strip() for t in value.split(","))
                       if tag and tag.lower() not in SUPPORTED_OPTIONS]
        if unsupported:
            response = build_response(request, 420, to_tag=to_tag)
            response.headers.add("Unsupported", ", ".join(unsupported))
            return response
    return None


def options_response(request: Request, *, to_tag: str) -> Response:
    """OPTIONS answered by the switch itself: phones and gateways use it as keepalive."""
    response = build_response(request, 200, to_tag=to_tag)
    response.headers.add("Allow", ALLOW_VALUE)
    response.headers.add("Accept", "application/sdp")
    response.headers.add("Supported", ", ".join(SUPPORTED_OPTIONS))
    return response
