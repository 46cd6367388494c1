"""Parties added to a call that is up (as `Call` offers them, switch.calls.call): a third
party in a conference, a supervisor listening, whispering or barging in, a colleague
consulted in a three-way call.

The two parties a call connects (`a` and `b`) stay as they are: bridged in the engine.
While at least one added party has answered, the call's legs are in one N-party mix
instead, and who hears whom is a matrix kept by `CallMedia`:

* `a` and `b` hear each other and are heard by every added party;
* an added party hears everyone; who hears *it* depends on its mode:
  "conference" and "barge" everyone, "listen" nobody, "whisper" only the party it
  coaches (the agent, or the customer);
* "consult": the agent (the party it names) talks with it while the call's other party
  (the customer) is kept out, hearing music on hold; the agent hears ringback while it
  rings. Then "conference" brings the customer in, `take_over` hands the customer to
  it (a transfer), removing it returns the customer to the agent, and an agent who hangs
  up during the consultation leaves the customer with it.

A mode can change while the party is on the call without a new call or a gap: only the
hearing matrix changes. When the last added party leaves, the legs leave the mix and the
engine's bridge carries the call again, as before. The recording is fed from `a` and
`b` only, so a whisper never reaches it.

When `a` or `b` hangs up while a "conference" or "barge" party is on the call, that
party takes its place and the call goes on (an agent who brought in a colleague may
leave); with only listeners and whisperers left the call ends as it would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from switch.calls.events import LegAnswered, PartyDigit, PartyJoined, PartyLeft, PartyModeChanged
from switch.calls.legs import Leg
from switch.calls.media import CallMedia
from switch.calls.types import NO_ANSWER, CallState, DialTarget
from switch.sip import (
    Answered,
    ByeReceived,
    EarlyMedia,
    Ended,
    Held,
    InviteEvent,
    Rejected,
    Resumed,
    Ringing,
)

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["PARTY_MODES", "AddedParty", "Conferenced", "PartyError", "PartyMode"]

PartyMode = Literal["conference", "listen", "whisper", "barge", "consult"]
PARTY_MODES: tuple[PartyMode, ...] = ("conference", "listen", "whisper", "barge", "consult")
_HEARD_BY_ALL = frozenset({"conference", "barge"})
CONSULT_MUSIC = "consult"  # what CallMedia.playing says toward a party kept on hold
CONSULT_RINGBACK = "consult-ringback"  # toward the consulting agent while it rings


class PartyError(ValueError):
    """A party cannot be added or changed as asked (the message says why)."""


@dataclass(slots=True)
class AddedParty:
    leg: Leg
    mode: PartyMode
    coached: Leg | None  # "whisper": the one party who hears it
    deadline: float | None  # while it rings: when to give up


class Conferenced:
    """What `Call` needs to have for these (it has them)."""

    control: CallHost
    call_id: str
    a: Leg
    b: Leg | None
    state: CallState
    _media: CallMedia
    _parties: dict[Leg, AddedParty]
    _unfinished_byes: list[Leg]

    # -- asked from outside (a supervisor, an agent's conference button)

    @property
    def added_parties(self) -> list[AddedParty]:
        return list(self._parties.values())

    def add_party(self, target: DialTarget, now: float, *, mode: PartyMode = "conference",
                  coached: Leg | None = None, ring_timeout_s: float | None = None) -> Leg:
        """Ring `target` and put it on this answered call in `mode` once it answers.
        PartyError when the call is not up, the mode is unknown, a whisper names no
        party of the call, or the engine has no port for the leg."""
        if self.state is not CallState.ANSWERED:
            raise PartyError(f"call {self.call_id} is not answered")
        self._check_mode(mode, coached)
        leg = self.dial_extra(target, now, ring_deadline=False)  # its own, below
        if leg is None:
            raise PartyError("no free RTP port for the new party")
        timeout = self.control.settings.ring_timeout_s if ring_timeout_s is None \
            else ring_timeout_s
        self._parties[leg] = AddedParty(leg, mode, coached, now + timeout)
        if mode == "consult":
            self.arrange_parties()  # the customer waits with music from now on
        return leg

    def set_party_mode(self, leg: Leg, mode: PartyMode, coached: Leg | None = None) -> None:
        """Listen, whisper, barge or conference from now on, with no new call."""
        party = self._party(leg)
        self._check_mode(mode, coached)
        party.mode, party.coached = mode, coached
        self.arrange_parties()
        if leg.answered:
            self.control.report(PartyModeChanged(
                self.call_id, leg.index, mode, None if coached is None else coached.index))

    def remove_party(self, leg: Leg, now: float) -> None:
        """Hang up an added party (CANCEL while it rings); the call goes on as before."""
        self._party(leg)
        if not leg.hang_up(now):
            self._unfinished_byes.append(leg)
        self._drop_party(leg, "removed")

    def take_over(self, leg: Leg, replaced: Leg, now: float) -> None:
        """The added party (answered) replaces `replaced` (a or b), whose leg ends."""
        party = self._party(leg)
        if not leg.answered:
            raise PartyError("the new party has not answered yet")
        if replaced not in (self.a, self.b):
            raise PartyError("only one of the call's two parties can be replaced")
        self._promote(party, replaced, now)

    # -- from call control

    def on_party_event(self, leg: Leg, event: InviteEvent, now: float) -> None:
        party = self._parties[leg]
        if isinstance(event, Ringing | EarlyMedia):
            self.leg_ringing(leg)
        elif isinstance(event, Answered):
            if not leg.take_answer(event.sdp):
                leg.hang_up(now)
                self._drop_party(leg, "bad-answer", status=488)
                return
            leg.answered = True
            party.deadline = None
            self.control.report(LegAnswered(self.call_id, leg.index))
            self._media.set_remote(leg)
            self.arrange_parties()
            self.control.report(PartyJoined(
                self.call_id, leg.index, party.mode,
                None if party.coached is None else party.coached.index))
        elif isinstance(event, Rejected):
            self._drop_party(leg, f"rejected-{event.status}", status=event.status)
        elif isinstance(event, ByeReceived | Ended):
            self._drop_party(leg, "hung-up" if isinstance(event, ByeReceived)
                             else f"ended-{event.cause}")
        elif isinstance(event, Held | Resumed):
            self.answer_reinvite(leg, event.sdp, now)

    def party_left_call(self, leaving: Leg, now: float) -> bool:
        """`leaving` (a or b) hung up: True when an answered conference or barge party
        took its place, so the call goes on."""
        heir = next((party for party in self._parties.values()
                     if party.leg.answered and (party.mode in _HEARD_BY_ALL or (
                         party.mode == "consult" and party.coached is leaving))), None)
        if heir is None:
            return False
        self._promote(heir, leaving, now)
        return True

    def party_digit(self, leg: Leg, digit: str) -> None:
        """A DTMF digit from an added party (a supervisor switching mode): reported."""
        self.control.report(PartyDigit(self.call_id, leg.index, digit))

    def party_of_engine_leg(self, engine_leg: int) -> Leg | None:
        return next((leg for leg in self._parties if leg.engine_leg == engine_leg), None)

    def party_lost(self, leg: Leg, now: float, why: str) -> None:
        """An added party's media died (RTP timeout): it goes, the call stays."""
        if not leg.hang_up(now):
            self._unfinished_byes.append(leg)
        self._drop_party(leg, why)

    @property
    def parties_deadline(self) -> float | None:
        return min((p.deadline for p in self._parties.values() if p.deadline is not None),
                   default=None)

    def party_timers(self, now: float) -> None:
        for party in list(self._parties.values()):
            if party.deadline is not None and now >= party.deadline:
                party.leg.hang_up(now, q850_cause=NO_ANSWER)
                self._drop_party(party.leg, "no-answer", status=480)

    def end_parties(self, now: float, q850_cause: int | None) -> None:
        """The call ends: every added party is hung up with it."""
        for leg in list(self._parties):
            if not leg.hang_up(now, q850_cause=q850_cause):
                self._unfinished_byes.append(leg)
            self._drop_party(leg, "call-ended")

    def heard_parties(self) -> list[Leg]:
        """Answered added parties everyone hears: their voice belongs in the recording."""
        return [party.leg for party in self._parties.values()
                if party.leg.answered and not party.leg.engine_closed
                and party.mode in _HEARD_BY_ALL]

    def arrange_parties(self) -> None:
        """Put the engine's mix in line with the answered parties (or leave it), and
        the recording with those everyone hears."""
        joined = [party for party in self._parties.values()
                  if party.leg.answered and not party.leg.engine_closed]
        core = [leg for leg in (self.a, self.b)
                if leg is not None and leg.media is not None and not leg.engine_closed]
        consults = [party for party in self._parties.values() if party.mode == "consult"]
        held: set[int] = set()  # the parties a consultation keeps out
        for party in consults:
            kept_out = self.other(party.coached) if party.coached is not None else None
            if kept_out is not None:
                held.add(kept_out.engine_leg)
        ringing = {party.coached.engine_leg for party in consults
                   if party.coached is not None and not party.leg.answered}
        self.follow_recording()
        self._consult_sounds(core, held, ringing)
        if not joined and not held:
            self._media.unmix()
            return
        modes = {party.leg.engine_leg: party for party in joined}

        def hears(listener: int, talker: int) -> bool:
            if listener in held or talker in held:
                return False  # kept out of a consultation
            party = modes.get(talker)
            if party is None:
                return True  # the call's own parties are heard by all
            if party.mode in _HEARD_BY_ALL or party.mode == "consult":
                return True  # (a consultation's customer was kept out above)
            return party.mode == "whisper" and party.coached is not None \
                and party.coached.engine_leg == listener

        self._media.mix([leg.engine_leg for leg in core] + list(modes), hears)

    # -- inside

    def _consult_sounds(self, core: list[Leg], held: set[int], ringing: set[int]) -> None:
        """Music toward whoever a consultation keeps out, ringback toward the agent while
        the consulted party rings; each stopped once no longer so."""
        media = self._media
        for leg in core:
            playing = media.playing.get(leg.engine_leg)
            if leg.engine_leg in held:
                if playing is None:
                    music = self.control.settings.music_on_hold
                    if music is not None:
                        media.play(leg, [music], what=CONSULT_MUSIC, loop=True)
                    else:
                        media.play_tone(leg, "ringback", what=CONSULT_MUSIC)
            elif playing == CONSULT_MUSIC:
                media.stop_playing(leg, CONSULT_MUSIC)
            if leg.engine_leg in ringing:
                if playing is None:
                    media.play_tone(leg, "ringback", what=CONSULT_RINGBACK)
            elif playing == CONSULT_RINGBACK:
                media.stop_playing(leg, CONSULT_RINGBACK)

    def _party(self, leg: Leg) -> AddedParty:
        party = self._parties.get(leg)
        if party is None:
            raise PartyError(f"{leg} is not a party added to call {self.call_id}")
        return party

    def _check_mode(self, mode: str, coached: Leg | None) -> None:
        if mode not in PARTY_MODES:
            raise PartyError(f"mode must be one of {', '.join(PARTY_MODES)}, got {mode!r}")
        if mode == "whisper" and coached not in (self.a, self.b):
            raise PartyError("a whisper goes to one of the call's two parties")
        if mode == "consult" and (coached not in (self.a, self.b) or self.b is None):
            raise PartyError("a consultation names the consulting one of the call's two "
                             "parties")

    def _drop_party(self, leg: Leg, why: str, *, status: int | None = None) -> None:
        if self._parties.pop(leg, None) is None:
            return
        if status is not None:
            leg.final_status = status
        self.detach(leg)
        self.arrange_parties()
        self.control.report(PartyLeft(self.call_id, leg.index, why))

    def _promote(self, party: AddedParty, replaced: Leg, now: float) -> None:
        del self._parties[party.leg]
        self._media.unmix()  # rebuilt below with the new pair
        self.replace(replaced, party.leg, now)
        self.control.report(PartyLeft(self.call_id, party.leg.index, "took-over"))
        for other in self._parties.values():
            if other.coached is replaced:
                other.coached = party.leg
        self.arrange_parties()

    if TYPE_CHECKING:  # provided by Call
        def dial_extra(self, target: DialTarget, now: float, *,
                       ring_deadline: bool = True) -> Leg | None: ...
        def leg_ringing(self, leg: Leg) -> None: ...
        def detach(self, leg: Leg) -> None: ...
        def replace(self, old: Leg, new: Leg, now: float) -> None: ...
        def answer_reinvite(self, leg: Leg, sdp: bytes, now: float) -> None: ...
        def follow_recording(self, leaving: Leg | None = None) -> None: ...
        def other(self, leg: Leg) -> Leg | None: ...
