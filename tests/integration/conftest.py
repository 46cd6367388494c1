from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_process import SwitchProcess

AGENT_PASSWORD = "s3cret-pass-1001"


@pytest.fixture
def switch(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SwitchProcess]:
    """A running switch with one agent, extension 1001. A test may pass config text
    with @pytest.mark.parametrize("switch", ["..."], indirect=True)."""
    process = SwitchProcess(tmp_path, getattr(request, "param", ""))
    process.add_user("agent1001", AGENT_PASSWORD, "1001")
    process.start()
    yield process
    process.stop()
