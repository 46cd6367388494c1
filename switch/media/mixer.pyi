"""N-party mixer with per-pair talk/listen rights; PCM is native-endian signed 16-bit."""

from collections.abc import Mapping

from typing_extensions import Buffer

FRAME_SAMPLES: int
FRAME_BYTES: int
MAX_PARTIES: int
SUPERVISOR_TOPOLOGIES: dict[str, frozenset[tuple[str, str]]]

class Mixer:
    """Up to 16 participants; a new one hears everyone and everyone hears it."""

    @property
    def participants(self) -> tuple[int, ...]: ...
    def add_participant(self, participant: int) -> None:
        """ValueError if already in the mix or the mix is full."""
    def remove_participant(self, participant: int) -> None: ...
    def set_rights(self, talker: int, listener: int, audible: bool) -> None:
        """Whether listener hears talker; ValueError if they are the same participant."""
    def can_hear(self, listener: int, talker: int) -> bool: ...
    def hears(self, listener: int) -> frozenset[int]: ...
    def apply_topology(self, topology: str, *, supervisor: int, agent: int, customer: int) -> None:
        """Set the rights among the three to a preset: "listen", "whisper" or "barge"."""
    def mix(self, frames: Mapping[int, Buffer]) -> dict[int, bytes]:
        """Mix equal-length inputs of whole 320-byte frames; a missing input is silence."""
