"""One call leg: a SIP INVITE dialog (either side) plus the engine leg its RTP uses.

A `Leg` knows its own SDP bookkeeping (our offer or answer, what the far end sent,
o= versions) and how to hang itself up whatever state it is in; what legs are
connected to is the call's business (switch.calls.call).
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.pri_gateway import Seizure, format_reason, q850_cause_for_status
from switch.sip import (
    CODECS,
    DEFAULT_CODECS,
    TELEPHONE_EVENT,
    Codec,
    InviteClient,
    InviteServer,
    LocalProtocolError,
    NegotiatedMedia,
    SdpError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    process_answer,
)

__all__ = ["Leg", "LegKind", "callee_codecs"]

NORMAL_CLEARING = 16  # Q.850 "normal call clearing"


@dataclass(frozen=True, slots=True)
class LegKind:
    """What is at the far end, which decides some signalling details."""

    trunk: bool  # a PRI gateway: Reason headers with Q.850 causes, in-band ringback
    name: str  # for CDRs: a gateway name, an extension, a URI


def callee_codecs(caller: NegotiatedMedia | None) -> tuple[Codec, ...]:
    """What to offer the party we dial, given what the caller's leg agreed on."""
    if caller is None:
        # A late offer: the caller answers our offer only in its ACK, after the
        # callee has answered. Offer the callee every codec we have; whatever the
        # two pick, the engine relays PCMU<->PCMA by table.
        return DEFAULT_CODECS
    # The caller's codec only, so the bridge relays without transcoding (plus DTMF
    # if the caller has it).
    codec = CODECS[caller.codec_name.lower()]
    return (codec, TELEPHONE_EVENT) if caller.dtmf_payload_type is not None else (codec,)


class Leg:
    def __init__(self, index: int, session: InviteServer | InviteClient, engine_leg: int,
                 kind: LegKind, *, session_id: int, seizure: Seizure | None = None) -> None:
        self.index = index
        self.session = session
        self.engine_leg = engine_leg
        self.kind = kind
        self.seizure = seizure  # the E1 channel this leg holds, released when it ends
        self.session_id = session_id
        self.sdp_version = 1
        self.offer: SessionDescription | None = None  # ours, on an outgoing leg
        self.local_sdp: bytes = b""  # the last SDP we gave the far end
        self.media: NegotiatedMedia | None = None  # what the far end receives on
        self.held = False  # the far end put us on hold
        self.answered = False
        self.rang = False  # CallRinging was reported for it
        self.final_status: int | None = None  # an outgoing leg's failure
        self.q850_cause: int | None = None
        self.end_reported = False
        self.engine_closed = False  # its engine leg was closed before the call ended

    def __repr__(self) -> str:
        return f"<Leg {self.index} {self.kind.name} engine {self.engine_leg}>"

    @property
    def sip_call_id(self) -> str:
        return self.session.invite.call_id

    @property
    def inbound(self) -> bool:
        return isinstance(self.session, InviteServer)

    @property
    def ended(self) -> bool:
        return self.session.ended

    # -- SDP

    def answer_offer(self, offer_sdp: bytes, *, media_address: str, local_port: int) -> bytes:
        """Our answer to the far end's offer (initial or re-INVITE); raises SdpError."""
        negotiation = negotiate_answer(
            SessionDescription.parse(offer_sdp), local_address=media_address,
            local_port=local_port, session_id=self.session_id,
            session_version=self._next_version())
        self.media = negotiation.media
        self.held = negotiation.media.on_hold
        self.local_sdp = negotiation.answer.serialize()
        return self.local_sdp

    def offered(self, offer: SessionDescription) -> None:
        """`offer` went out in our INVITE: its answer is checked against it."""
        self.offer = offer
        self.local_sdp = offer.serialize()
        self.sdp_version = offer.origin.session_version + 1

    def make_offer(self, *, media_address: str, local_port: int) -> bytes:
        """Our offer to a far end whose INVITE had none (a late offer, RFC 3264 §5):
        every codec we have (PCMU, PCMA, telephone-event), answered in its ACK."""
        self.offered(build_offer(media_address, local_port, session_id=self.session_id,
                                 session_version=self.sdp_version))
        return self.local_sdp

    def take_answer(self, answer_sdp: bytes, offer: SessionDescription | None = None) -> bool:
        """The far end's answer to our offer (the INVITE's unless `offer` is given);
        False when it does not fit the offer."""
        offer = offer or self.offer
        assert offer is not None
        try:
            self.media = process_answer(offer, SessionDescription.parse(answer_sdp))
        except SdpError:
            return False
        return True

    def _next_version(self) -> int:
        version, self.sdp_version = self.sdp_version, self.sdp_version + 1
        return version

    # -- hanging up

    def hang_up(self, now: float, *, status: int = 480, q850_cause: int | None = None,
                reason_header: str | None = None) -> bool:
        """End this leg whatever its state: reject (inbound, unanswered), CANCEL
        (outbound, unanswered) or BYE. A trunk leg is told the Q.850 cause. False only
        when the BYE must wait (our 2xx is not ACKed yet); the caller retries later."""
        session = self.session
        if session.ended:
            return True
        unanswered = session.final_status is None
        if isinstance(session, InviteServer) and unanswered:
            session.reject(status, now, headers=self._reason(
                reason_header, q850_cause, q850_cause_for_status(status)))
            return True
        # CANCEL or BYE: a normal release unless a cause was given (Q.850 16).
        headers = self._reason(reason_header, q850_cause, NORMAL_CLEARING)
        if isinstance(session, InviteClient):
            if unanswered:
                session.cancel(now, headers=headers)
                return True
            if not session.answered:
                return True  # it failed already
        try:
            session.bye(now, headers=headers)
        except LocalProtocolError:
            return False
        return True

    def _reason(self, reason_header: str | None, q850_cause: int | None,
                default_cause: int) -> list[tuple[str, str]]:
        # The far end's own Reason passes through unchanged (RFC 3326); otherwise a
        # gateway gets a Q.850 cause, so ISDN shows the PSTN party the right one.
        # A phone gets a Reason only when there is a cause worth telling (a full trunk).
        if reason_header:
            return [("Reason", reason_header)]
        if q850_cause is not None:
            return [("Reason", format_reason(q850_cause))]
        if not self.kind.trunk:
            return []
        return [("Reason", format_reason(default_cause))]
