"""Turning a dialplan decision into call control actions: which extension's phone to
ring, which gateway of a trunk group to seize, which application to start.

Sans-I/O: the registrar, the trunk accounting and call control are in memory; the
owner (switch.signalling) calls `route` for a new INVITE and applications call
`dial_number` to reach a number (an extension or the PSTN) from an existing call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from switch.calls import (
    NO_ROUTE,
    TEMPORARY_FAILURE,
    Call,
    CallControl,
    CallOrigin,
    DialTarget,
    Failure,
    Forking,
    LegKind,
    Originate,
    OriginateError,
    Step,
)
from switch.dialplan import (
    CallDirection,
    Dialplan,
    Reject,
    RingGroup,
    RouteDecision,
    RouteQuery,
    ToApplication,
    ToExtension,
    ToRingGroup,
    ToTrunkGroup,
)
from switch.pri_gateway import (
    ALL_GATEWAYS_DOWN,
    NumberError,
    Rejection,
    Seizure,
    Trunks,
    normalize,
)
from switch.sip import Binding, NameAddr, Peer, Registrar, RequestReceived, SipUri

__all__ = ["CallRouter", "StartApplication", "national_number"]

log = logging.getLogger("callcenter.calls")

SUBSCRIBER_ABSENT = 20  # Q.850: the extension's phone is not registered
ANONYMOUS = "anonymous"  # RFC 3323 §4.1.1.3

# Starts the named application on a call (switch.applications); False: no such app.
StartApplication = Callable[[Call, ToApplication, float], bool]


def national_number(number: str) -> str:
    """How CDRs, routes and the customer lookup see a number: the national form
    (13800138000, 01088886666, 4008123456), or the digits as given when they are no
    public number (an extension, a short code)."""
    try:
        return normalize(number).national
    except NumberError:
        return number


def _contact_peer(binding: Binding) -> Peer:
    """Where to send an INVITE for a registration: to the flow the REGISTER came on
    (behind NAT that is the only way in), unless the Contact names another port on
    that same host (a phone registering on behalf of its own second line, or a
    test tool): then the Contact, since no NAT stands between them."""
    uri = binding.contact.uri
    flow = binding.flow
    if isinstance(uri, SipUri) and uri.host == flow.host and uri.port is not None \
            and uri.port != flow.port and flow.transport == "UDP":
        return Peer(flow.transport, flow.host, uri.port)
    return flow


class CallRouter:
    def __init__(self, control: CallControl, registrar: Registrar, dialplan: Dialplan,
                 trunks: Trunks | None, *, domain: str,
                 start_application: StartApplication | None = None) -> None:
        self.control = control
        self.registrar = registrar
        self.dialplan = dialplan
        self.trunks = trunks
        self.domain = domain  # the host part of the From we present to phones
        self.start_application = start_application
        control.resolve = self.resolve_number

    def resolve_number(self, call: Call, number: str, now: float) -> DialTarget | int:
        """Where to ring `number` for `call` (a transfer), or the SIP status why not."""
        decision = self.dialplan.route(
            RouteQuery(CallDirection.OUTBOUND, None, number, call.origin.caller))
        if isinstance(decision, Reject):
            return decision.status
        if isinstance(decision, ToApplication):
            return 404  # a transfer reaches people and numbers, not applications
        if isinstance(decision, ToExtension):
            # A transfer rings the newest registration only (its own leg, no fork).
            targets = self._extension_targets(call, decision.extension, now)
            return targets[-1] if targets else 480
        if isinstance(decision, ToRingGroup):
            return 404
        target = self._trunk_target(call, decision, None)
        return target.status if isinstance(target, Rejection) else target

    def route(self, received: RequestReceived, caller_peer: Peer, origin: CallOrigin,
              query: RouteQuery, now: float) -> Call | None:
        """Accept the INVITE as a call and send it where the dialplan says."""
        decision = self.dialplan.route(query)
        seized: Seizure | Rejection | None = None
        if isinstance(decision, ToTrunkGroup):
            # Seize first, so the CDR opens with the gateway the call goes out on.
            seized = self._seize(decision, received.request.call_id)
            if origin.direction == "internal":
                # The CDR's callee is the number that went out to the PSTN (after the
                # route's strip/prepend), as the carrier will bill it.
                origin = replace(origin, direction="outbound", trunk=decision.group,
                                 callee=decision.dialled_number,
                                 gateway=seized.gateway.name
                                 if isinstance(seized, Seizure) else None)
        call = self.control.accept(received, caller_peer, origin, now)
        if call is None:
            if isinstance(seized, Seizure) and self.trunks is not None:
                self.trunks.release(seized)
            return None
        call.recording_policy = self.dialplan.recording(query) or call.recording_policy
        self.connect(call, decision, now, seized=seized)
        return call

    def originate(self, agent_extension: str, number: str, now: float, *,
                  ring_timeout_s: float | None = None) -> Call:
        """Click-to-dial (switch.calls.originate): ring the agent's phone (its newest
        registration), then `number` as the agent would dial it. Raises OriginateError
        when that cannot start: nothing rang, nothing is held."""
        bindings = self.registrar.lookup(agent_extension, now)
        if not bindings:
            raise OriginateError("agent", 480, SUBSCRIBER_ABSENT,
                                 f"extension {agent_extension} is not registered")
        decision = self.dialplan.route(
            RouteQuery(CallDirection.OUTBOUND, None, number, agent_extension))
        origin = CallOrigin("internal", agent_extension, number,
                            LegKind(trunk=False, name=agent_extension))
        seized: Seizure | None = None
        if isinstance(decision, Reject | ToApplication):
            status = decision.status if isinstance(decision, Reject) else 404
            raise OriginateError("customer", status, NO_ROUTE, f"no route to {number}")
        if isinstance(decision, ToTrunkGroup):
            seizure = self._seize(decision, self.control.new_token())
            if isinstance(seizure, Rejection):
                raise OriginateError("customer", seizure.status, seizure.q850_cause,
                                     f"trunk group {decision.group} has no free channel")
            seized = seizure
            # The CDR's callee is the number sent to the PSTN, as for a phone dialling.
            origin = replace(origin, direction="outbound", callee=decision.dialled_number,
                             trunk=decision.group, gateway=seizure.gateway.name)
        # The agent's phone shows the number it is about to be connected to.
        target = self._phone_target(bindings[-1], agent_extension, number, None)
        call = self.control.originate(target, origin, now)
        if call is None:
            if seized is not None and self.trunks is not None:
                self.trunks.release(seized)
            raise OriginateError("agent", 503, TEMPORARY_FAILURE, "no free RTP port")
        timeout_s = ring_timeout_s or self.control.settings.ring_timeout_s
        call.originate = Originate(
            lambda call, now: self.connect(call, decision, now, seized=seized),
            ring_deadline=now + timeout_s, seizure=seized)
        self.control.drain(call, now)
        return call

    def dial_number(self, call: Call, number: str, now: float) -> bool:
        """Ring `number` for an existing call, as if it had been dialled from our side
        (an application bridging, a transfer): extensions and outbound routes apply."""
        query = RouteQuery(CallDirection.OUTBOUND, None, number, call.origin.caller)
        decision = self.dialplan.route(query)
        if isinstance(decision, ToApplication):
            decision = Reject(404, "Not Found")  # one application does not call another
        return self.connect(call, decision, now)

    def connect(self, call: Call, decision: RouteDecision, now: float, *,
                seized: Seizure | Rejection | None = None) -> bool:
        """Act on a decision; False when the call could not be sent anywhere (it has
        then been failed: hung up, or an application told PeerFailed)."""
        control = self.control
        if isinstance(decision, Reject):
            log.info("call %s to %r: no route (%d)", call.call_id, call.origin.callee,
                     decision.status)
            self._fail(call, decision.status, NO_ROUTE, now, "no-route")
            return False
        if isinstance(decision, ToApplication):
            if self.start_application is None or not self.start_application(
                    call, decision, now):
                log.warning("call %s: application %r is not available", call.call_id,
                            decision.name)
                self._fail(call, 503, 41, now, "no-application")
                return False
            return True
        if isinstance(decision, ToRingGroup):
            return self.ring(call, decision.group, now)
        if isinstance(decision, ToExtension):
            targets = self._extension_targets(call, decision.extension, now)
            if not targets:
                log.info("call %s: extension %s is not registered", call.call_id,
                         decision.extension)
                self._fail(call, 480, SUBSCRIBER_ABSENT, now, "not-registered")
                return False
            if len(targets) > 1:  # every registered device rings (switch.calls.forking)
                forks: list[DialTarget | Failure] = list(targets)
                return self._fork(call, [lambda now: forks],
                                  control.settings.ring_timeout_s, now)
            target: DialTarget | Rejection = targets[0]
        else:
            target = self._trunk_target(call, decision, seized)
        if isinstance(target, Rejection):
            self._fail(call, target.status, target.q850_cause, now, "trunk-unavailable")
            return False
        leg = call.dial(target, now)
        if leg is None and target.seizure is not None:
            control.release(target.seizure)  # no RTP port: the channel was never used
        control.drain(call, now)
        return leg is not None

    def ring(self, call: Call, group: RingGroup, now: float) -> bool:
        """Ring a group's targets at once or in turn; False when nothing could ring."""
        if group.strategy == "sequential":
            steps = [self._step(call, (number,)) for number in group.targets]
        else:
            steps = [self._step(call, group.targets)]
        timeout_s = group.ring_timeout_s or self.control.settings.ring_timeout_s
        return self._fork(call, steps, timeout_s, now)

    def _fork(self, call: Call, steps: list[Step], ring_timeout_s: float,
              now: float) -> bool:
        call.fork(Forking(steps, ring_timeout_s), now)
        self.control.drain(call, now)
        return call.forking is not None or call.b is not None

    def _step(self, call: Call, numbers: tuple[str, ...]) -> Step:
        return lambda now: [target for number in numbers
                            for target in self._number_targets(call, number, now)]

    def _number_targets(self, call: Call, number: str,
                        now: float) -> list[DialTarget | Failure]:
        """Where a ring group's `number` rings (each device of an extension), or why
        it cannot."""
        decision = self.dialplan.route(
            RouteQuery(CallDirection.OUTBOUND, None, number, call.origin.caller))
        if isinstance(decision, Reject):
            return [Failure(decision.status, NO_ROUTE)]
        if isinstance(decision, ToExtension):
            return list(self._extension_targets(call, decision.extension, now)) \
                or [Failure(480, SUBSCRIBER_ABSENT)]
        if isinstance(decision, ToTrunkGroup):
            target = self._trunk_target(call, decision, None)
            if isinstance(target, Rejection):
                return [Failure(target.status, target.q850_cause)]
            return [target]
        return [Failure(404, NO_ROUTE)]  # an application or a group: not from a group

    def _fail(self, call: Call, status: int, q850_cause: int, now: float, cause: str) -> None:
        if call.application is not None:
            call.dial_failed(None, status, q850_cause, now)
        else:
            call.hang_up(now, status=status, q850_cause=q850_cause, cause=cause)
        self.control.drain(call, now)

    def _extension_targets(self, call: Call, extension: str,
                           now: float) -> list[DialTarget]:
        """One target per registered device, the most recently registered last."""
        origin = call.origin
        caller, display = ((ANONYMOUS, "Anonymous") if origin.restricted
                           else (origin.caller, origin.display))
        return [self._phone_target(binding, extension, caller, display)
                for binding in self.registrar.lookup(extension, now)]

    def _phone_target(self, binding: Binding, extension: str, caller: str,
                      display: str | None) -> DialTarget:
        return DialTarget(
            peer=_contact_peer(binding), request_uri=binding.contact.uri.serialize(),
            to=NameAddr(SipUri(self.domain, user=extension)),
            from_=NameAddr(SipUri(self.domain, user=caller), display),
            kind=LegKind(trunk=False, name=extension))

    def _seize(self, decision: ToTrunkGroup, key: str) -> Seizure | Rejection:
        if self.trunks is None or decision.group not in self.trunks.groups:
            return ALL_GATEWAYS_DOWN
        seizure = self.trunks.seize_outbound(decision.group, key)
        if isinstance(seizure, Rejection):
            log.info("trunk group %s: %d cause %d", decision.group, seizure.status,
                     seizure.q850_cause)
        return seizure

    def _trunk_target(self, call: Call, decision: ToTrunkGroup,
                      seized: Seizure | Rejection | None) -> DialTarget | Rejection:
        # Each outside leg holds its own channel (a call may have two: a transfer out).
        seizure = seized if seized is not None else self._seize(decision,
                                                               self.control.new_token())
        if isinstance(seizure, Rejection):
            return seizure
        gateway = seizure.gateway
        number = decision.dialled_number
        caller = call.origin.caller
        # Inside our trust domain: the gateway gets the caller's number as From and as
        # P-Asserted-Identity (RFC 3325), which PRI turns into the calling party number.
        from_ = NameAddr(SipUri(self.domain, user=caller))
        return DialTarget(
            peer=Peer(gateway.transport, gateway.host, gateway.port),
            request_uri=SipUri(gateway.host, user=number, port=gateway.port).serialize(),
            to=NameAddr(SipUri(gateway.host, user=number)), from_=from_,
            kind=LegKind(trunk=True, name=gateway.name),
            headers=(("P-Asserted-Identity", from_.serialize()),),
            seizure=seizure)
