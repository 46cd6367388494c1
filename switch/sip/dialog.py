"""SIP dialogs (RFC 3261 §12): state, in-dialog request construction, CSeq ordering.

Sans-I/O: a `Dialog` is built from the request/response pair that created it, turns
dialog state into the next request to send, and takes in requests and responses the
caller has already matched to it (through a `DialogTable`). It never sends anything and
never reads a clock. Transactions (§17) sit below: the caller hands us messages after
the transaction layer has absorbed retransmissions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from switch.sip.errors import LocalProtocolError, RemoteProtocolError
from switch.sip.headers import NameAddr, Via, canonical_name
from switch.sip.message import Headers, Request, Response, SipMessage, build_response
from switch.sip.uri import SipUri

__all__ = [
    "TARGET_REFRESH_METHODS", "Dialog", "DialogError", "DialogId", "DialogState",
    "DialogTable", "build_dialog_response", "is_in_dialog", "reject_unknown_dialog",
]

DEFAULT_MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6
FIRST_LOCAL_SEQ = 1  # RFC 3261 §8.1.1.5: any value below 2**31; 1 keeps bytes predictable
MAX_SEQ = 2**31 - 1  # RFC 3261 §8.1.1.5: the number MUST be less than 2**31

# Requests that may change the remote target: INVITE (RFC 3261 §12.2), UPDATE
# (RFC 3311), SUBSCRIBE and NOTIFY (RFC 6665), REFER (RFC 3515, as updated by RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

# ACK and CANCEL carry the number of the INVITE they belong to (§13.2.2.4, §9.1), so
# they neither take a new local number nor move the remote one.
_SEQ_REUSING_METHODS = frozenset({"ACK", "CANCEL"})

# Responses to an in-dialog request that end the dialog (§12.2.1.2).
_TERMINATING_STATUSES = frozenset({408, 481})

# Headers the dialog writes itself; a caller passing them has a bug.
_DIALOG_HEADERS = frozenset({"Via", "Max-Forwards", "Route", "From", "To", "Call-ID", "CSeq",
                             "Contact", "Content-Length"})

# §19.1.1 table 1: a Request-URI may not carry the `method` parameter or URI headers.
_NOT_IN_REQUEST_URI = ("method",)

# Transports a request must have used for the dialog to be secure (§12.1.1, §12.1.2).
_SECURE_TRANSPORTS = frozenset({"TLS", "WSS"})


class DialogError(RemoteProtocolError):
    """The peer broke a dialog rule; `status` is what to answer (500, 481, 400)."""


class DialogState(enum.Enum):
    EARLY = "early"  # §12.1: created by a provisional response
    CONFIRMED = "confirmed"  # §12.1: created or confirmed by a 2xx
    TERMINATED = "terminated"  # §12.3


class _Event(enum.Enum):
    CONFIRM = "2xx to the dialog-creating request"
    TERMINATE = "terminate"


_TRANSITIONS: dict[tuple[DialogState, _Event], DialogState] = {
    (DialogState.EARLY, _Event.CONFIRM): DialogState.CONFIRMED,
    # A retransmitted or forked-duplicate 2xx changes nothing once confirmed.
    (DialogState.CONFIRMED, _Event.CONFIRM): DialogState.CONFIRMED,
    (DialogState.EARLY, _Event.TERMINATE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, _Event.TERMINATE): DialogState.TERMINATED,
    (DialogState.TERMINATED, _Event.TERMINATE): DialogState.TERMINATED,
}


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus both tags, seen from our side (§12). A null remote tag is allowed
    for RFC 2543 peers that send no From tag (§12.1.1)."""

    call_id: str
    local_tag: str
    remote_tag: str | None

    @classmethod
    def for_request(cls, request: Request) -> DialogId | None:
        """The id of the dialog an incoming request belongs to: our tag is in To."""
        local_tag = request.to.tag
        if local_tag is None:
            return None
        return cls(request.call_id, local_tag, request.from_.tag)

    @classmethod
    def for_response(cls, response: Response) -> DialogId | None:
        """The id of the dialog an incoming response belongs to: our tag is in From."""
        local_tag = response.from_.tag
        if local_tag is None:
            return None
        return cls(response.call_id, local_tag, response.to.tag)

    def __repr__(self) -> str:
        return f"<DialogId {self.call_id} local={self.local_tag} remote={self.remote_tag}>"


@dataclass(eq=False, slots=True, kw_only=True)
class Dialog:
    """One dialog's state (§12). Build it with `from_uac` or `from_uas`."""

    id: DialogId
    state: DialogState
    local_seq: int | None  # None until we send a request (UAS side, §12.1.1)
    remote_seq: int | None  # None until the peer sends one (UAC side, §12.1.2)
    local_uri: NameAddr  # carries local_tag
    remote_uri: NameAddr  # carries remote_tag (if any)
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    secure: bool = False
    local_contact: NameAddr | None = None
    # (seq, method) of the dialog-creating request: its 2xx confirms an early dialog.
    initial_cseq: tuple[int, str] | None = None
    # Number of the last INVITE we sent, reused by ACK and CANCEL.
    invite_seq: int | None = None

    # --- creation (§12.1) ----------------------------------------------------------

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a response to our request creates (§12.1.2): 101-199 with a To tag
        gives an early dialog, 2xx a confirmed one."""
        if not 101 <= response.status <= 299:
            raise LocalProtocolError(f"a {response.status} response does not create a dialog")
        local_tag, remote_tag = request.from_.tag, response.to.tag
        if local_tag is None:
            raise LocalProtocolError("our request has no From tag")
        if remote_tag is None:
            raise DialogError(f"{response.status} response has no To tag")
        target = _contact_target(response)
        if target is None:
            raise DialogError(f"{response.status} response creating a dialog has no Contact")
        state = DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED
        cseq = request.cseq
        return cls(
            id=DialogId(request.call_id, local_tag, remote_tag),
            state=state,
            local_seq=cseq.seq,
            remote_seq=None,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=target,
            # Record-Route lists proxies from the UAS outward; we walk it the other way.
            route_set=_checked_routes(list(reversed(response.record_routes))),
            secure=_is_secure(request),
            local_contact=request.contacts[0] if request.contacts else None,
            initial_cseq=(cseq.seq, cseq.method),
            invite_seq=cseq.seq if cseq.method == "INVITE" else None,
        )

    @classmethod
    def from_uas(cls, request: Request, response: Response) -> Dialog:
        """The dialog our response (carrying our To tag) creates (§12.1.1)."""
        if not 101 <= response.status <= 299:
            raise LocalProtocolError(f"a {response.status} response does not create a dialog")
        if request.to.tag is not None:
            raise LocalProtocolError("the request is already inside a dialog")
        local_tag = response.to.tag
        if local_tag is None:
            raise LocalProtocolError("our response has no To tag")
        target = _contact_target(request)
        if target is None:
            raise DialogError(f"{request.method} creating a dialog has no Contact", 400)
        state = DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED
        cseq = request.cseq
        return cls(
            id=DialogId(request.call_id, local_tag, request.from_.tag),
            state=state,
            local_seq=None,
            remote_seq=cseq.seq,
            local_uri=response.to,
            remote_uri=request.from_,
            remote_target=target,
            route_set=_checked_routes(list(request.record_routes)),
            secure=_is_secure(request),
            local_contact=response.contacts[0] if response.contacts else None,
            initial_cseq=(cseq.seq, cseq.method),
        )

    # --- sending (§12.2.1.1) ----------------------------------------------------

    def create_request(self, method: str, *, via: Via, contact: NameAddr | None = None,
                       headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                       max_forwards: int = DEFAULT_MAX_FORWARDS) -> Request:
        """The next request of this dialog. `via` is the top Via with its branch.
        ACK and CANCEL reuse the number of the last INVITE we sent; every other
        method takes the next local sequence number."""
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"cannot send {method} in a terminated dialog")
        if method in _SEQ_REUSING_METHODS:
            if self.invite_seq is None:
                raise LocalProtocolError(f"no INVITE in this dialog for {method} to reuse")
            if method == "CANCEL" and (self.invite_seq, "INVITE") == self.initial_cseq:
                # §9.1: that CANCEL copies the INVITE's To (no tag) and Request-URI.
                raise LocalProtocolError("build the CANCEL of the initial INVITE from the "
                                         "INVITE, not from a dialog")
            seq = self.invite_seq
        else:
            seq = FIRST_LOCAL_SEQ if self.local_seq is None else self.local_seq + 1
            if seq > MAX_SEQ:
                raise LocalProtocolError("local CSeq number exhausted")
            self.local_seq = seq
            if method == "INVITE":
                self.invite_seq = seq
        if method in TARGET_REFRESH_METHODS:
            # §12.2.1.1: a target refresh request carries a Contact; ours by default.
            if contact is not None:
                self.local_contact = contact
            contact = self.local_contact
            if contact is None:
                raise LocalProtocolError(f"{method} is a target refresh and needs a Contact")
        return self._build(method, seq, via, contact, headers, body, max_forwards)

    def create_ack(self, invite_cseq: int, via: Via, body: bytes = b"") -> Request:
        """The ACK for a 2xx to the INVITE numbered `invite_cseq` (§13.2.2.4). Also in
        a terminated dialog: every 2xx is ACKed, even one that crossed a BYE, or its
        sender retransmits it for 32 s and then tears down what is left."""
        return self._build("ACK", invite_cseq, via, None, (), body, DEFAULT_MAX_FORWARDS)

    def _build(self, method: str, seq: int, via: Via, contact: NameAddr | None,
               extra: Iterable[tuple[str, str]], body: bytes, max_forwards: int) -> Request:
        request_uri, routes = self._request_uri_and_routes()
        headers = Headers()
        headers.add("Via", via.serialize())
        headers.add("Max-Forwards", str(max_forwards))
        for route in routes:
            headers.add("Route", route.serialize())
        headers.add("From", self.local_uri.serialize())
        headers.add("To", self.remote_uri.serialize())
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if contact is not None:
            headers.add("Contact", contact.serialize())
        for name, value in extra:
            if canonical_name(name) in _DIALOG_HEADERS:
                raise LocalProtocolError(f"the dialog sets the {name} header itself")
            headers.add(name, value)
        return Request(method, request_uri, headers, body)

    def _request_uri_and_routes(self) -> tuple[SipUri, list[NameAddr]]:
        if not self.route_set or "lr" in self.route_set[0].sip_uri.params:
            # No route, or a loose router first: the target goes in the Request-URI.
            return _as_request_uri(self.remote_target), list(self.route_set)
        # A strict router (RFC 2543) expects to find itself in the Request-URI and the
        # real destination at the end of the Route header.
        first, *rest = self.route_set
        return (_as_request_uri(first.sip_uri),
                [*rest, NameAddr(self.remote_target)])

    # --- receiving (§12.2.2, §12.2.1.2) ---------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Take in a request the peer sent in this dialog. Raises DialogError with the
        status to answer: 500 for an out-of-order CSeq, 481 after termination."""
        self._check_id(DialogId.for_request(request))
        if request.method == "ACK":
            # ACK carries its INVITE's number and gets no answer: nothing to check.
            return
        if self.state is DialogState.TERMINATED:
            raise DialogError("the dialog is terminated", 481)
        seq = request.cseq.seq
        if request.method in _SEQ_REUSING_METHODS:
            return
        if self.remote_seq is not None and seq < self.remote_seq:
            raise DialogError(
                f"CSeq {seq} is lower than the dialog's remote sequence number "
                f"{self.remote_seq}", 500)
        self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            self.refresh_target_from(request)

    def receive_response(self, response: Response) -> None:
        """Take in a response to a request we sent in this dialog."""
        self._check_id(DialogId.for_response(response))
        if self.state is DialogState.TERMINATED:
            return  # e.g. the 200 to our BYE
        status, cseq = response.status, response.cseq
        is_initial = (cseq.seq, cseq.method) == self.initial_cseq
        if status in _TERMINATING_STATUSES:
            self._apply(_Event.TERMINATE)
        elif 200 <= status <= 299:
            if is_initial and self.state is DialogState.EARLY:
                self._apply(_Event.CONFIRM)
                # §13.2.2.4: the route set is recomputed from the confirming 2xx.
                self.route_set = _checked_routes(list(reversed(response.record_routes)))
            if cseq.method in TARGET_REFRESH_METHODS:
                self.refresh_target_from(response)
        elif status >= 300 and is_initial and self.state is DialogState.EARLY:
            # §12.3: a non-2xx final answer to the creating request ends early dialogs.
            self._apply(_Event.TERMINATE)

    def send_response(self, response: Response) -> None:
        """Note a response we send in this dialog (UAS side): a 2xx to the creating
        request confirms an early dialog, a non-2xx final one ends it (§12.3)."""
        cseq = response.cseq
        if (cseq.seq, cseq.method) != self.initial_cseq or self.state is not DialogState.EARLY:
            return
        if 200 <= response.status <= 299:
            self._apply(_Event.CONFIRM)
        elif response.status >= 300:
            self._apply(_Event.TERMINATE)

    def refresh_target_from(self, message: SipMessage) -> None:
        """Replace the remote target with the message's Contact, if it has one."""
        target = _contact_target(message)
        if target is not None:
            self.remote_target = target

    def terminate(self) -> None:
        self._apply(_Event.TERMINATE)

    def _apply(self, event: _Event) -> None:
        try:
            self.state = _TRANSITIONS[self.state, event]
        except KeyError:
            raise LocalProtocolError(
                f"no dialog transition from {self.state.name} on {event.value}") from None

    def _check_id(self, message_id: DialogId | None) -> None:
        if message_id != self.id:
            raise LocalProtocolError(f"{message_id!r} does not belong to {self.id!r}")

    def __repr__(self) -> str:
        return (f"<Dialog {self.state.name} {self.id.call_id} local={self.id.local_tag} "
                f"remote={self.id.remote_tag} target={self.remote_target}>")


class DialogTable:
    """Dialogs by full id, so forked early dialogs of one INVITE (same Call-ID and
    local tag, different remote tags) live side by side."""

    __slots__ = ("_dialogs",)

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._dialogs:
            raise LocalProtocolError(f"dialog {dialog.id!r} already exists")
        self._dialogs[dialog.id] = dialog

    def find_for_request(self, request: Request) -> Dialog | None:
        return self._live(DialogId.for_request(request))

    def find_for_response(self, response: Response) -> Dialog | None:
        return self._live(DialogId.for_response(response))

    def early_dialogs(self, call_id: str, local_tag: str) -> list[Dialog]:
        """Early dialogs of one request: all end when it gets a non-2xx final answer
        (§12.3), whatever To tag that answer carries."""
        return [d for d in self._dialogs.values()
                if d.id.call_id == call_id and d.id.local_tag == local_tag
                and d.state is DialogState.EARLY]

    def remove(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.pop(dialog_id, None)

    def _live(self, dialog_id: DialogId | None) -> Dialog | None:
        # A terminated dialog no longer exists for the peer (§12.3): it gets 481.
        dialog = self._dialogs.get(dialog_id) if dialog_id is not None else None
        return None if dialog is None or dialog.state is DialogState.TERMINATED else dialog

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __len__(self) -> int:
        return len(self._dialogs)


def is_in_dialog(request: Request) -> bool:
    """A request with a To tag claims a dialog (§12.2.2)."""
    return request.to.tag is not None


def reject_unknown_dialog(request: Request) -> Response:
    """The 481 for an in-dialog request that matches no dialog (§12.2.2)."""
    if request.method == "ACK":
        raise LocalProtocolError("an ACK is never answered; drop it")
    return build_response(request, 481)


def build_dialog_response(request: Request, status: int, *, to_tag: str, contact: NameAddr,
                          reason: str | None = None, body: bytes = b"") -> Response:
    """A dialog-creating response (§12.1.1): our To tag, our Contact, and the
    request's Record-Route copied in order so the caller learns the same route set."""
    response = build_response(request, status, reason, to_tag=to_tag, body=body)
    for value in request.headers.get_all("Record-Route"):
        response.headers.add("Record-Route", value)
    response.headers.add("Contact", contact.serialize())
    return response


def _contact_target(message: SipMessage) -> SipUri | None:
    contacts = message.contacts
    if message.is_wildcard_contact:
        raise DialogError("Contact: * is not allowed in a dialog", 400)
    if len(contacts) > 1:
        # §8.1.1.8 and §12.1.1: one Contact, the single target of the dialog.
        raise DialogError(f"expected one Contact in a dialog message, got {len(contacts)}",
                          400)
    return contacts[0].sip_uri if contacts else None


def _checked_routes(routes: list[NameAddr]) -> list[NameAddr]:
    for route in routes:
        route.sip_uri  # noqa: B018 - raises HeaderError (400) for a non-SIP route
    return routes


def _as_request_uri(uri: SipUri) -> SipUri:
    if not uri.headers and not any(p in uri.params for p in _NOT_IN_REQUEST_URI):
        return uri
    params = {k: v for k, v in uri.params.items() if k not in _NOT_IN_REQUEST_URI}
    return SipUri(uri.host, uri.user, uri.password, uri.port, params, {}, uri.secure)


def _is_secure(request: Request) -> bool:
    # §12.1.1/§12.1.2: sent or received over TLS with a SIPS Request-URI. The top Via
    # names the transport of the hop the request used.
    return (isinstance(request.uri, SipUri) and request.uri.secure
            and request.top_via.transport in _SECURE_TRANSPORTS)
