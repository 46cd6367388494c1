"""Prompt player: decoded prompts (16-bit PCM) out as 20 ms frames of 160 samples."""

from collections.abc import Iterable

from typing_extensions import Buffer

class PromptPlayer:
    """Plays prompts in order without gaps, pads the last frame with silence; with
    ``loop`` the list repeats seamlessly until ``stop()`` (music on hold)."""

    def __init__(self, prompts: Iterable[Buffer], *, loop: bool = False) -> None:
        """ValueError if a prompt has an odd number of bytes."""
    def next_frame(self) -> bytes | None:
        """The next frame (320 bytes), or None once finished."""
    def stop(self) -> None:
        """Finish at the next frame."""
    @property
    def finished(self) -> bool: ...
    @property
    def prompt_index(self) -> int: ...
    @property
    def frames_played(self) -> int: ...
