"""A call's one recording, as `Call` offers it (switch.calls.call): started at the first
answer (policy "always": an application answering counts), or when asked ("on_demand":
an application, later the agent), never ("never"); fed from whoever the call's parties
are as they change (transfers, a new party: CallMedia.follow), into the same file;
paused and resumed for what must not be kept (a card number), the pause written as
silence so the file's timeline stays true. Each change is reported (switch.calls.events)
for the CDR."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switch.calls.events import RecordingPaused, RecordingResumed, RecordingStarted
from switch.calls.legs import Leg
from switch.calls.media import CallMedia
from switch.calls.types import CallState

if TYPE_CHECKING:
    from switch.calls.host import CallHost

__all__ = ["Recorded"]


class Recorded:
    """What `Call` needs to have for these (it has them)."""

    control: CallHost
    call_id: str
    a: Leg
    b: Leg | None
    state: CallState
    recording_policy: str
    _media: CallMedia

    if TYPE_CHECKING:  # provided by Call
        def follow_recording(self, leaving: Leg | None = None) -> None: ...

    def start_recording(self, now: float) -> bool:
        """Record the call from now on (the first answer, unless "on_demand"); False
        when it already records, has ended, its policy is "never" or no recording is
        configured."""
        record = self.control.settings.recording_path
        if record is None or self.recording_policy == "never" \
                or self._media.recording is not None or self.state is CallState.ENDED:
            return False
        path = record(self.call_id)
        b = self.b if self.b is not None and self.b.answered else None
        self._media.record(self.a, b, path)
        self.follow_recording()  # a conference or barge-in already on the call
        self.control.report(RecordingStarted(self.call_id, path))
        return True

    def pause_recording(self, now: float) -> bool:
        """Silence into the recording until resume_recording; False if it was not
        recording, or already paused."""
        if not self._media.pause_recording(True):
            return False
        self.control.report(RecordingPaused(self.call_id))
        return True

    def resume_recording(self, now: float) -> bool:
        if not self._media.pause_recording(False):
            return False
        self.control.report(RecordingResumed(self.call_id))
        return True
