"""A call's one media arrangement: what the engine does for the call's legs now (the
bridge, what plays toward whom, the recording), so each change is sent to the engine
once. Call control (switch.calls.call) decides; this keeps the bookkeeping and talks to the
engine through `MediaControl`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

from switch.calls.legs import Leg
from switch.calls.types import MediaControl
from switch.media import REC_MAX_EXTRA

__all__ = ["CallMedia", "Tone"]

Tone = Literal["dial", "ringback", "busy", "congestion"]


class CallMedia:
    def __init__(self, engine: MediaControl) -> None:
        self.engine = engine
        self.bridged = False
        self.playing: dict[int, str] = {}  # engine leg -> what: a tone, "prompt", "moh"
        self.recording: int | None = None  # the call's one recording (all parties)
        self.recording_paused = False
        # The legs it is fed from: left, right, and parties added to the right channel.
        self._recorded: tuple[int, int | None, tuple[int, ...]] | None = None
        self.mix_id: int | None = None  # while parties were added (switch.calls.parties)
        self._mixed: list[int] = []  # engine legs in the mix
        self._hearing: dict[tuple[int, int], bool] = {}  # (listener, talker) -> hears

    def set_remote(self, leg: Leg) -> None:
        """Send `leg`'s RTP where its far end said it receives (once it said so)."""
        media = leg.media
        if media is not None:
            self.engine.set_remote(leg.engine_leg, media.remote_address, media.remote_port,
                                   media.payload_type, media.dtmf_payload_type)

    def bridge(self, a: Leg, b: Leg) -> None:
        self.engine.bridge(a.engine_leg, b.engine_leg)
        self.bridged = True

    def unbridge(self, leg: Leg) -> None:
        if self.bridged:
            self.bridged = False
            self.engine.unbridge(leg.engine_leg)

    def mix(self, legs: list[int], hears: Callable[[int, int], bool]) -> None:
        """Put exactly `legs` in the call's mix (made on first use), `hears(listener,
        talker)` deciding who hears whom; only what changed is sent to the engine. A leg
        in the mix gets the mix instead of the bridge's relay."""
        engine = self.engine
        if self.mix_id is None:
            self.mix_id = engine.create_mix()
        mix = self.mix_id
        for leg in [leg for leg in self._mixed if leg not in legs]:
            self._leave(leg)
        for leg in legs:
            if leg not in self._mixed:
                engine.join_mix(mix, leg)  # hears everyone, heard by everyone
                for other in self._mixed:
                    self._hearing[(leg, other)] = self._hearing[(other, leg)] = True
                self._mixed.append(leg)
        for listener in self._mixed:
            for talker in self._mixed:
                if listener == talker:
                    continue
                wanted = hears(listener, talker)
                if self._hearing.get((listener, talker)) != wanted:
                    engine.set_hearing(mix, listener, talker, wanted)
                    self._hearing[(listener, talker)] = wanted

    def unmix(self) -> None:
        """Every leg leaves the mix (the bridge carries the call again); it is freed."""
        if self.mix_id is None:
            return
        for leg in list(self._mixed):
            self._leave(leg)
        self.engine.destroy_mix(self.mix_id)
        self.mix_id = None

    def leave_mix(self, leg: Leg) -> None:
        """`leg` is about to close or move: out of the mix first."""
        if leg.engine_leg in self._mixed:
            self._leave(leg.engine_leg)

    def _leave(self, leg: int) -> None:
        assert self.mix_id is not None
        self.engine.leave_mix(self.mix_id, leg)
        self._mixed.remove(leg)
        self._hearing = {pair: audible for pair, audible in self._hearing.items()
                         if leg not in pair}

    def send_dtmf(self, leg: Leg, digits: str) -> None:
        self.engine.send_dtmf(leg.engine_leg, digits)

    def play_tone(self, leg: Leg, tone: Tone, *, what: str | None = None) -> None:
        self.playing[leg.engine_leg] = what or tone
        self.engine.play_tone(leg.engine_leg, tone)

    def play(self, leg: Leg, prompts: list[str | bytes | os.PathLike[str]], *,
             what: str = "prompt", loop: bool = False) -> None:
        self.playing[leg.engine_leg] = what
        self.engine.play(leg.engine_leg, prompts, loop=loop)

    def stop_playing(self, leg: Leg, what: str | None = None) -> None:
        """Stop what plays toward `leg` (only if it is `what`, unless None)."""
        playing = self.playing.get(leg.engine_leg)
        if playing is not None and (what is None or playing == what):
            del self.playing[leg.engine_leg]
            self.engine.stop_playing(leg.engine_leg)

    def hold_music(self, a: Leg, b: Leg, music_on_hold: str | None) -> None:
        """Music on hold toward whoever is not holding, while the other one holds. Play
        overrides relay in the engine, so the bridge itself stays as it is."""
        if not self.bridged:
            return
        for holder, listener in ((a, b), (b, a)):
            playing = self.playing.get(listener.engine_leg)
            if holder.held and playing is None:
                if music_on_hold is not None:
                    self.play(listener, [music_on_hold], what="moh", loop=True)
                else:
                    self.playing[listener.engine_leg] = "moh"
                    self.engine.play_tone(listener.engine_leg, "ringback")
            elif not holder.held and playing == "moh":
                self.stop_playing(listener, "moh")

    def record(self, a: Leg, b: Leg | None, path: str) -> None:
        """The call's one recording: `a` left, `b` (or silence) right."""
        self.recording = self.engine.record(
            a.engine_leg, None if b is None else b.engine_leg, path)
        self._recorded = (a.engine_leg, None if b is None else b.engine_leg, ())

    def follow(self, a: Leg | None, b: Leg | None, added: Sequence[Leg] = ()) -> None:
        """Feed the recording from the call's answered parties now (a transfer, a new
        party, one leaving), into the same file, with `added` parties (a conference
        member, a supervisor barging in) on the right channel; a leg about to close must
        be let go first."""
        legs = [leg.engine_leg for leg in (a, b)
                if leg is not None and leg.answered and not leg.engine_closed]
        extra = tuple(leg.engine_leg for leg in added
                      if leg.answered and not leg.engine_closed)[:REC_MAX_EXTRA]
        if self.recording is None or not legs:
            return
        wanted = (legs[0], legs[1] if len(legs) > 1 else None, extra)
        if wanted != self._recorded:
            if extra:
                self.engine.retarget_recording(self.recording, wanted[0], wanted[1], extra)
            else:
                self.engine.retarget_recording(self.recording, wanted[0], wanted[1])
            self._recorded = wanted

    def pause_recording(self, paused: bool) -> bool:
        """Pause or resume; False when there was nothing to change."""
        if self.recording is None or self.recording_paused == paused:
            return False
        self.engine.pause_recording(self.recording, paused)
        self.recording_paused = paused
        return True

    def stop_recording(self) -> None:
        if self.recording is not None:
            self.engine.stop_recording(self.recording)
            self.recording = None
            self.recording_paused = False
