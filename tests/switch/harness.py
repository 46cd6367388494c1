"""The in-memory test harness for call control, and its one door: every call-control
unit test imports from here.

- harness_net: Net, the switch's real CallControl and CallRouter (and, if asked, its
  gateway probes) on one transaction layer with the phones and gateways on theirs,
  real SIP bytes between them (datagrams lost as a test says), a FakeMediaEngine, and a
  manual clock (`now`; `advance(until)` fires every timer on the way); DirectNet, call
  control without the router, ringing phones by name.
- harness_phones: Party (a phone or a PRI gateway), the switch's and gateways'
  addresses, DID and MOBILE, the trunk group routes and `route` for any other.
- here: the calls tests build again and again (a connected call, an attended
  transfer, an extension on two devices) and Desk, a Net whose DID starts an
  application (switch.applications) for a PSTN customer, with agent 1002 registered;
  `settle` lets the application's task run.

A test builds a Net (or a DirectNet or a Desk), adds parties, dials, answers, steps
time, and reads the parties' events and the reports (CDR and call events) call control
published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from switch.applications import Application, ApplicationRunner
from switch.calls import Call, CallSettings, Leg
from switch.dialplan import RingGroup
from switch.sip import ByeReceived, InviteClient, InviteServer
from switch.sip.refer import ReferTo, Replaces
from tests.switch.harness_net import DirectNet, Net
from tests.switch.harness_phones import (
    DID,
    DOMAIN,
    EXTENSIONS,
    GW1,
    GW2,
    MOBILE,
    MOH,
    OUTSIDE_LINE,
    SERVICE_DID,
    SWITCH,
    Behaviour,
    Party,
    cause_of,
    counter,
    route,
    sdp,
)

__all__ = [
    "DID", "DOMAIN", "EXTENSIONS", "GW1", "GW2", "MOBILE", "MOH", "OUTSIDE_LINE",
    "SERVICE_DID", "SWITCH", "Behaviour", "Desk", "DirectNet", "Net", "Party",
    "attended_transfer", "cause_of", "connected_call", "counter", "route", "run_pending",
    "sdp", "settle", "two_devices",
]


# -- calls the tests build again and again


def connected_call(net: Net, caller: Party, agent: Party) -> tuple[InviteClient, InviteServer]:
    """`caller` dials `agent` by name and the agent answers."""
    outgoing = net.dial(caller, agent.name)
    incoming = net.answer(agent)
    assert caller.answered(outgoing)
    return outgoing, incoming


def attended_transfer(net: Net, agent: Party, expert: Party,
                      agent_leg: InviteServer) -> tuple[Call, Call, InviteClient, Leg]:
    """The agent (on `agent_leg`, the first call) consults 1002 on a second call, then
    REFERs the first call's party to it with Replaces: (first, second, the consultation
    dialog, the expert's leg)."""
    first = net.call()
    consultation = net.dial(agent, "1002")
    net.answer(expert)
    second = next(c for c in net.control.calls.values() if c is not first)
    expert_leg = second.b
    assert expert_leg is not None
    dialog = consultation.dialog
    assert dialog is not None
    replaces = Replaces(dialog.id.call_id, to_tag=dialog.id.remote_tag or "",
                        from_tag=dialog.id.local_tag)
    refer_to = f"<sip:1002@{DOMAIN}?{replaces.as_uri_header()}>"
    assert ReferTo.parse(refer_to).replaces == replaces
    agent_leg.send_request("REFER", net.now, headers=[("Refer-To", refer_to)])
    net.pump()
    return first, second, consultation, expert_leg


def two_devices(net: Net) -> tuple[Party, Party, Party]:
    """Alice (1001) and extension 1002 on a desk phone and, registered later, a softphone."""
    alice = net.party("1001", "10.0.0.1")
    desk, soft = net.party("desk", "10.0.0.2"), net.party("soft", "10.0.0.3", 5062)
    net.register(desk, "1002")
    net.register(soft, "1002")
    return alice, desk, soft


# -- applications (switch.applications) on the network


class Hooks:
    """ServiceHooks over the in-memory network (SipService's now/pump/dial_number)."""

    def __init__(self, net: Net) -> None:
        self.net = net

    @property
    def now(self) -> float:
        return self.net.now

    def pump(self) -> None:
        self.net.pump()

    def dial_number(self, call: Call, number: str) -> bool:
        return self.net.router.dial_number(call, number, self.net.now)

    def dial_numbers(self, call: Call, numbers: Sequence[str], *, sequential: bool,
                     ring_timeout_s: float | None) -> bool:
        group = RingGroup("", "sequential" if sequential else "simultaneous",
                          tuple(numbers), ring_timeout_s)
        return self.net.router.ring(call, group, self.net.now)


class Desk:
    """A network whose DID starts `application`, an agent 1002 and a PSTN customer."""

    def __init__(self, applications: Mapping[str, Application], *, name: str = "desk",
                 prompt: str | None = None, prompts_dir: str | None = None,
                 settings: CallSettings | None = None, recording: str | None = None) -> None:
        self.runner = ApplicationRunner(applications, prompts_dir=prompts_dir)
        self.net = Net([route(did=DID, application=name, prompt=prompt, recording=recording),
                        OUTSIDE_LINE, route(extension=True)],
                       start_application=self.runner.start, settings=settings)
        self.runner.attach(Hooks(self.net))
        self.net.on_pump.append(
            lambda: self.runner.deliver(self.net.control.channel_events()))
        self.agent = self.net.party("1002", "10.0.0.2")
        self.net.register(self.agent)
        self.customer = self.net.gateway(GW1)
        self.outgoing: InviteClient | None = None

    def call_in(self) -> InviteClient:
        """The customer dials the DID from their mobile."""
        self.outgoing = self.net.dial(self.customer, DID, from_user=MOBILE)
        return self.outgoing

    @property
    def call(self) -> Call:
        return self.net.call()

    @property
    def caller_leg(self) -> int:
        return self.call.a.engine_leg

    def press(self, digits: str) -> None:
        self.net.press(self.caller_leg, digits)

    def prompt_ends(self) -> None:
        self.net.prompt_ends(self.caller_leg)

    def playing(self) -> str | None:
        return self.net.playing(self.caller_leg)

    def customer_got_bye(self) -> bool:
        assert self.outgoing is not None
        return any(isinstance(e, ByeReceived) for e in self.customer.events_of(self.outgoing))


async def settle(until: Callable[[], bool]) -> None:
    """Let the application task run (no time passes) until `until()` holds."""
    for _ in range(200):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the application never got there")


async def run_pending() -> None:
    """Let the application task run as far as it can without new input."""
    for _ in range(50):
        await asyncio.sleep(0)
