"""The switch's SIP stack (RFC 3261 and friends), sans-I/O except `transport`.

Layers, each calling only the one below: message/uri/sdp (pure wire types) ->
transaction (RFC 3261 §17, RFC 6026) -> dialog (§12) -> registrar and auth for the
UAS core. Call control in `switch` drives them; only `transport` owns sockets.
"""

from switch.sip.auth import (
    AuthHeaderError,
    AuthOutcome,
    AuthResult,
    Credentials,
    DigestAuthenticator,
    DigestResponse,
    build_authorization,
    compute_ha1,
)
from switch.sip.bans import FailureBanList, describe_ban
from switch.sip.dialog import Dialog, DialogError, DialogId, DialogState, DialogTable
from switch.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from switch.sip.framing import StreamFramer
from switch.sip.headers import CSeq, HeaderError, NameAddr, Via
from switch.sip.message import (
    Headers,
    ParseError,
    Request,
    Response,
    SipMessage,
    build_error_response,
    build_response,
    parse_message,
)
from switch.sip.offer_answer import (
    NegotiatedMedia,
    NoAcceptableMedia,
    build_offer,
    negotiate_answer,
    process_answer,
)
from switch.sip.peer import Outgoing, Peer, response_peer
from switch.sip.registrar import Binding, Registrar, RegistrationChanged, aor_key
from switch.sip.screening import options_response, screen_request
from switch.sip.sdp import Direction, SdpError, SessionDescription
from switch.sip.status import reason_phrase
from switch.sip.transaction import (
    AckReceived,
    ClientTransaction,
    MergedRequestRejected,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    StrayResponseReceived,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from switch.sip.transport import SipTransport, TransportLimits
from switch.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, UriError, parse_uri

__all__ = [
    "AbsoluteUri",
    "AckReceived",
    "AuthHeaderError",
    "AuthOutcome",
    "AuthResult",
    "Binding",
    "CSeq",
    "ClientTransaction",
    "Credentials",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogState",
    "DialogTable",
    "DigestAuthenticator",
    "DigestResponse",
    "Direction",
    "FailureBanList",
    "HeaderError",
    "Headers",
    "LocalProtocolError",
    "MergedRequestRejected",
    "NameAddr",
    "NegotiatedMedia",
    "NoAcceptableMedia",
    "Outgoing",
    "ParseError",
    "Peer",
    "Registrar",
    "RegistrationChanged",
    "RemoteProtocolError",
    "Request",
    "RequestReceived",
    "Response",
    "ResponseReceived",
    "SdpError",
    "ServerTransaction",
    "SessionDescription",
    "SipError",
    "SipMessage",
    "SipTransport",
    "SipUri",
    "StrayResponseReceived",
    "StreamFramer",
    "TelUri",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransportFailed",
    "TransportLimits",
    "Uri",
    "UriError",
    "Via",
    "aor_key",
    "build_authorization",
    "build_error_response",
    "build_offer",
    "build_response",
    "compute_ha1",
    "describe_ban",
    "negotiate_answer",
    "options_response",
    "parse_message",
    "parse_uri",
    "process_answer",
    "reason_phrase",
    "response_peer",
    "screen_request",
]
