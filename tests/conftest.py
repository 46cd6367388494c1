"""Suite-wide fixtures: external tools and a running switch process.

Under CI=true a missing external tool is a failure, never a skip: the test command
installs them, so a missing one means the install step is broken."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found ({hint}); ./test.sh installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
