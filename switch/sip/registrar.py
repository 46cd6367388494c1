"""Registrar (RFC 3261 §10.3): bindings of an address-of-record to contacts.

Sans-I/O. Authentication happens before `register` is called; this module only
applies the binding rules. Bindings remember the flow the REGISTER came in on
(source address, transport, connection) so a phone behind NAT is reached where it
really is (RFC 3581 received/rport), not at the private address in its Contact.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip.headers import HeaderError, NameAddr
from switch.sip.message import Request, Response, build_response
from switch.sip.peer import Peer
from switch.sip.uri import SipUri, TelUri


@dataclass(frozen=True, slots=True)
class Binding:
    aor: str
    contact: NameAddr
    expires_at: float
    call_id: str
    cseq: int
    flow: Peer
    user_agent: str | None = None

    def remaining_s(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """Emitted when an AOR goes from no live binding to some or back (for presence of
    agents' phones). `cause`: "registered", "unregistered" (the phone said so: expires 0
    or Contact *) or "expired" (it stopped refreshing)."""

    aor: str
    registered: bool
    cause: str = "registered"


def aor_key(uri: object) -> str | None:
    """The registrar keys AORs by user part: our domain is whatever the phone dialled."""
    if isinstance(uri, SipUri):
        return uri.user
    if isinstance(uri, TelUri):
        return uri.number
    return None


class Registrar:
    def __init__(self, *, min_expires_s: int = 60, max_expires_s: int = 3600,
                 default_expires_s: int = 3600, max_contacts_per_aor: int = 10) -> None:
        self.min_expires_s = min_expires_s
        self.max_expires_s = max_expires_s
        self.default_expires_s = default_expires_s
        self.max_contacts_per_aor = max_contacts_per_aor
        self._bindings: dict[str, list[Binding]] = {}
        self._changes: list[RegistrationChanged] = []

    def register(self, request: Request, flow: Peer, now: float, *, to_tag: str) -> Response:
        """Apply a REGISTER whose sender is already authenticated as the AOR's owner."""
        aor = aor_key(request.to.uri)
        if aor is None:
            return build_response(request, 404, to_tag=to_tag)
        before = bool(self._live(aor, now))
        try:
            header_expires = request.expires
            contacts = request.contacts
        except HeaderError:
            return build_response(request, 400, to_tag=to_tag)
        if request.is_wildcard_contact:
            # §10.3 step 6: "*" only alone and with Expires: 0.
            if contacts or header_expires != 0 or len(request.headers.get_all("Contact")) != 1:
                return build_response(request, 400, "Invalid Wildcard Contact", to_tag=to_tag)
            stale = self._check_order(aor, request)
            if stale is not None:
                return build_response(request, stale, to_tag=to_tag)
            self._bindings.pop(aor, None)
        else:
            updates: list[tuple[NameAddr, int]] = []
            for contact in contacts:
                expires = self._expires_for(contact, header_expires)
                if expires is None:
                    return build_response(request, 400, "Invalid Expires", to_tag=to_tag)
                if 0 < expires < self.min_expires_s:
                    response = build_response(request, 423, to_tag=to_tag)
                    response.headers.add("Min-Expires", str(self.min_expires_s))
                    return response
                updates.append((contact, min(expires, self.max_expires_s)))
            if updates:
                stale = self._check_order(aor, request)
                if stale is not None:
                    return build_response(request, stale, to_tag=to_tag)
            for contact, expires in updates:
                self._apply(aor, request, flow, contact, expires, now)
        live = self._live(aor, now)
        if len(live) > self.max_contacts_per_aor:
            self._bindings[aor] = live = live[-self.max_contacts_per_aor :]
        if bool(live) != before:
            self._changes.append(RegistrationChanged(
                aor, bool(live), "registered" if live else "unregistered"))
        response = build_response(request, 200, to_tag=to_tag)
        for binding in live:
            contact = NameAddr(binding.contact.uri, binding.contact.display_name,
                               {**binding.contact.params,
                                "expires": str(binding.remaining_s(now))})
            response.headers.add("Contact", contact.serialize())
        return response

    def _expires_for(self, contact: NameAddr, header_expires: int | None) -> int | None:
        value = contact.params.get("expires")
        if value is None:
            return self.default_expires_s if header_expires is None else header_expires
        if not value.isdigit() or not value.isascii():
            return None
        return int(value)

    def _check_order(self, aor: str, request: Request) -> int | None:
        """§10.3 step 7: same Call-ID with a CSeq not above the stored one is refused."""
        for binding in self._bindings.get(aor, []):
            if binding.call_id == request.call_id and request.cseq.seq <= binding.cseq:
                return 500
        return None

    def _apply(self, aor: str, request: Request, flow: Peer, contact: NameAddr,
               expires: int, now: float) -> None:
        bindings = self._bindings.setdefault(aor, [])
        bindings[:] = [b for b in bindings if not _same_contact(b.contact, contact)]
        if expires > 0:
            params = {k: v for k, v in contact.params.items() if k != "expires"}
            bindings.append(Binding(aor, NameAddr(contact.uri, contact.display_name, params),
                                    now + expires, request.call_id, request.cseq.seq, flow,
                                    request.headers.get("User-Agent")))
        if not bindings:
            del self._bindings[aor]

    def _live(self, aor: str, now: float) -> list[Binding]:
        return [b for b in self._bindings.get(aor, []) if b.expires_at > now]

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Live bindings, most recently registered last."""
        return self._live(aor, now)

    def registered_aors(self, now: float) -> frozenset[str]:
        """Every AOR with a live binding at ``now``."""
        return frozenset(aor for aor in self._bindings if self._live(aor, now))

    def expire(self, now: float) -> None:
        for aor in list(self._bindings):
            live = self._live(aor, now)
            if live:
                self._bindings[aor] = live
            else:
                del self._bindings[aor]
                self._changes.append(RegistrationChanged(aor, False, "expired"))

    def next_deadline(self) -> float | None:
        deadlines = [b.expires_at for bs in self._bindings.values() for b in bs]
        return min(deadlines) if deadlines else None

    def changes(self) -> list[RegistrationChanged]:
        changes, self._changes = self._changes, []
        return changes

    def __len__(self) -> int:
        return sum(len(bs) for bs in self._bindings.values())


def _same_contact(a: NameAddr, b: NameAddr) -> bool:
    if isinstance(a.uri, SipUri) and isinstance(b.uri, SipUri):
        return a.uri.matches(b.uri)
    return a.uri == b.uri
