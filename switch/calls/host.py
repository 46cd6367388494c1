"""`CallHost`: what a call (and its transfers, forks, originate, recording, reports and
parking) may ask of the call control that owns it, and nothing more.

`CallControl` is the one host in the product; a `Call` receives it as a `CallHost`, so a
call reaches no other member of its owner, and a test may host calls on anything with
these members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from switch.calls.events import CallEvent, ChannelEvent
from switch.calls.legs import Leg
from switch.calls.types import CallSettings, DialTarget, MediaControl
from switch.pri_gateway import Seizure
from switch.sip import InviteClient

if TYPE_CHECKING:
    from switch.calls.call import Call

__all__ = ["CallHost"]


class CallHost(Protocol):
    engine: MediaControl  # the media engine the call's legs live on
    media_address: str  # our address in the SDP we offer and answer
    settings: CallSettings  # ring timeout, maximum duration, recording, music on hold
    new_session_id: Callable[[], int]  # an SDP o= session id for a leg we dial
    release: Callable[[Seizure], object]  # gives an E1 channel back to the trunk
    resolve: Callable[[Call, str, float], DialTarget | int]  # a transfer's number

    def new_client(self, target: DialTarget, offer: bytes, now: float) -> InviteClient:
        """An INVITE to `target` with `offer`, on the host's transaction layer."""
        ...

    def adopt(self, call: Call, leg: Leg) -> None:
        """Route `leg`'s SIP and media events to `call` from now on."""
        ...

    def find_leg(self, sip_call_id: str) -> tuple[Call, Leg] | None:
        """The call and leg with this SIP Call-ID (attended transfer's Replaces)."""
        ...

    def report(self, event: CallEvent) -> None:
        """Publish a call event (CDRs, the ACD, the wallboard)."""
        ...

    def tell(self, event: ChannelEvent) -> None:
        """Tell the call's application (the Channel API) what happened."""
        ...

    def drain(self, call: Call, now: float) -> None:
        """Act on what `call` queued (its state, its timers), now."""
        ...
