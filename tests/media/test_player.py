"""Prompt player: exact frames, silence padding, seamless loops, prompt lists in order."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media.player import PromptPlayer

FRAME = 160


def pcm(samples: list[int] | range) -> bytes:
    return array("h", samples).tobytes()


def play_all(player: PromptPlayer, limit: int = 10_000) -> list[bytes]:
    frames = []
    while (frame := player.next_frame()) is not None:
        frames.append(frame)
        assert len(frames) < limit
    return frames


def test_frames_reproduce_the_prompt_and_pad_the_last_with_silence() -> None:
    prompt = pcm(range(-200, 200))  # 400 samples: 2.5 frames
    player = PromptPlayer([prompt])
    frames = play_all(player)
    assert len(frames) == 3
    assert b"".join(frames) == prompt + bytes(2 * 80)
    assert player.finished
    assert player.frames_played == 3
    assert player.next_frame() is None  # stays finished


def test_a_prompt_of_whole_frames_needs_no_padding() -> None:
    prompt = pcm(range(2 * FRAME))
    player = PromptPlayer([prompt])
    assert b"".join(play_all(player)) == prompt


def test_prompt_list_plays_in_order_without_gaps() -> None:
    first, second, third = pcm([1] * 100), pcm([2] * 30), pcm([3] * 200)
    player = PromptPlayer([first, second, third])
    assert player.prompt_index == 0
    assert player.next_frame() == first + second + pcm([3] * 30)
    assert player.prompt_index == 2
    assert b"".join(play_all(player)) == pcm([3] * 160) + pcm([3] * 10) + bytes(2 * 150)


def test_loop_wraps_seamlessly_until_stopped() -> None:
    prompt = pcm(range(250))  # not a whole number of frames
    player = PromptPlayer([prompt], loop=True)
    frames = [player.next_frame() for _ in range(7)]
    assert b"".join(f or b"" for f in frames) == (prompt * 5)[: 7 * 2 * FRAME]
    assert not player.finished
    player.stop()
    assert player.next_frame() is None
    assert player.finished


def test_empty_prompts_finish_at_once_even_when_looping() -> None:
    assert PromptPlayer([]).next_frame() is None
    assert PromptPlayer([b"", b""], loop=True).next_frame() is None


def test_prompt_buffers_are_kept_alive_by_the_player() -> None:
    player = PromptPlayer([pcm([7] * FRAME)])  # the only reference is the player's
    assert player.next_frame() == pcm([7] * FRAME)


def test_odd_length_prompt_is_refused() -> None:
    with pytest.raises(ValueError) as excinfo:
        PromptPlayer([pcm([1]), b"\x00\x01\x02"])
    assert str(excinfo.value) == "prompt 1 has an odd length (3 bytes); prompts are 16-bit PCM"


@given(
    st.lists(st.lists(st.integers(-32768, 32767), max_size=400), max_size=5),
    st.booleans(),
    st.integers(1, 12),
)
def test_player_equals_a_reference(prompts: list[list[int]], loop: bool, n_frames: int) -> None:
    stream = [sample for prompt in prompts for sample in prompt]
    if loop and stream:
        stream = stream * (n_frames * FRAME // len(stream) + 1)
    expected = [
        pcm(stream[i : i + FRAME] + [0] * (FRAME - len(stream[i : i + FRAME])))
        for i in range(0, min(len(stream), n_frames * FRAME), FRAME)
    ]
    player = PromptPlayer([pcm(prompt) for prompt in prompts], loop=loop)
    frames = [player.next_frame() for _ in range(n_frames)]
    assert [f for f in frames if f is not None] == expected
    assert frames[len(expected) :] == [None] * (n_frames - len(expected))
    assert player.finished == (len(expected) < n_frames)
