"""Parking a call in the switch (as `Call` offers it, switch.calls.call): its caller hears
music or a prompt, looping, until an application takes it off park, or bridges it to
a party who answered. The music plays on while that party rings (no ringback, no early
media from a phone) and gives way to them within one 20 ms tick: the stop and the
bridge are queued together, and the engine carries the caller's RTP stream over from
player to relay with one SSRC, the next sequence number and a timestamp a frame on."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from switch.calls.legs import Leg
from switch.calls.media import CallMedia

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["Parkable"]

PARKED = "park"  # what CallMedia.playing says toward a parked caller


class Parkable:
    """What `Call` needs to have for these (it has them)."""

    control: CallHost
    a: Leg
    _media: CallMedia

    @property
    def parked(self) -> bool:
        return self._media.playing.get(self.a.engine_leg) == PARKED

    def park(self, prompts: list[str | bytes | os.PathLike[str]], *,
             loop: bool = True) -> None:
        """Play `prompts` to the caller (looping, unless told) until unpark or a bridge."""
        self._media.set_remote(self.a)
        self._media.play(self.a, prompts, what=PARKED, loop=loop)

    def unpark(self) -> None:
        self._media.stop_playing(self.a, PARKED)
