"""What a call tells the ACD and the wallboard as it goes (switch.calls.events: ringing,
bridged, hold and resume), each once per change, as `Call` (switch.calls.call) offers it;
transfers are reported by switch.calls.transfers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switch.calls.events import CallBridged, CallHeld, CallResumed, CallRinging
from switch.calls.legs import Leg

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["Reported"]


class Reported:
    """What `Call` needs to have for these (it has them)."""

    control: CallHost
    call_id: str
    a: Leg
    b: Leg | None
    _bridged_legs: tuple[int, int] | None  # as last reported

    def leg_ringing(self, leg: Leg) -> None:
        """`leg` (one we dialled) rings: reported the first time."""
        if not leg.rang:
            leg.rang = True
            self.control.report(CallRinging(self.call_id, leg.index, leg.kind.name))

    def report_bridged(self) -> None:
        """The parties talk now, both answered: reported when they are new ones."""
        b = self.b
        if b is not None and b.answered and self.a.answered \
                and (legs := (self.a.index, b.index)) != self._bridged_legs:
            self._bridged_legs = legs
            self.control.report(CallBridged(self.call_id, legs))

    def report_hold(self, leg: Leg, was_held: bool) -> None:
        """`leg`'s re-INVITE was answered: held or resumed, if that changed."""
        if leg.held != was_held:
            self.control.report((CallHeld if leg.held else CallResumed)(self.call_id,
                                                                         leg.index))
