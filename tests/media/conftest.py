"""Fixtures of the media engine's loopback tests (a module may define its own)."""

from collections.abc import Iterator

import pytest

from switch.media import MediaEngine
from tests.media.phones import Phone

PORTS = (7500, 7699)


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    media = MediaEngine(workers=2, port_range=PORTS, rtp_timeout_s=60.0, ssrc_seed=7)
    media.start()
    yield media
    media.stop()


@pytest.fixture
def phones() -> Iterator[list[Phone]]:
    made = [Phone() for _ in range(5)]
    yield made
    for phone in made:
        phone.close()
